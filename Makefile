# sigd's one entry point. Every target sets up what it needs first.
#   make run    build what is missing, serve on 127.0.0.1:9000 (default policy)
#   make test   every test: guest logic, host units, components, the example
#               policies in Rust, Python and JavaScript, the real
#               binary over HTTP in a private PID namespace (strace, from
#               Debian, counts its syscalls), the slim build, Tensorlake's
#               SDK, Schemathesis against openapi.yaml
#   make build  the static release binary, stripped, at target/release/sigd
#               (it builds the default policy, and no test guest)
#   make build-slim  the same without the compiler, for VM images, at
#               target/release/sigd-slim: it runs the built-in policy and
#               policies precompiled by `sigd policy compile` (README,
#               "The VM-image build")
#   make hot-functions  record which functions both builds run, under
#               valgrind (host/hot-functions.txt): `build` and `build-slim`
#               lay them out first (scripts/hot-functions.sh)
#   make lint   rustfmt and clippy (the slim build too), warnings as errors
#   make fuzz   the parsers' fuzz targets, FUZZ_SECONDS each
#   make bench  sigd against its native baseline and a bare hyper server with
#               the same syscalls (bench/, built here), and the slim build's
#               size, memory and start-up beside the full one's; writes
#               bench/latest.md and bench/latency.png (see BENCHMARKS.md)
#   make bench-shadow  sigd with and without a shadow policy under load
#               (bench/shadow.py; after make test, which builds the shadows)
#   make soak   the hostile mix against one sigd for SOAK_SECONDS (120), in a
#               private PID namespace: well-behaved latency, descriptors and
#               RSS before, during and after (tests/soak/run.py)
#   make deb    the Debian package, target/debian/sigd_<version>_<arch>.deb:
#               the binary, the systemd units, the default config, the user
#               sigd made at install, the docs (packaging/deb.sh, dpkg-deb)

CARGO ?= cargo
PYTHON ?= python3
LISTEN ?= 127.0.0.1:9000

# sigd ships as one static binary. Building for the host triple named
# explicitly keeps crt-static off build scripts and proc-macros; tests and
# `make build` share that one build (target/<triple>/release).
HOST_TRIPLE := $(shell rustc -vV | sed -n 's/^host: //p')
TARGET_VAR := CARGO_TARGET_$(shell echo '$(HOST_TRIPLE)' | tr 'a-z.-' 'A-Z__')
RELEASE = $(TARGET_VAR)_RUSTFLAGS="-C target-feature=+crt-static" \
	$(CARGO) $(1) --release --locked --target $(HOST_TRIPLE)

# sigd linked again, with the code it runs laid out together
# (scripts/hot-functions.sh; lld only): $(1) the features.
LINK_HOT_FIRST = order=$$(scripts/hot-functions.sh order target/$(HOST_TRIPLE)/release/sigd target/hot-functions) && \
	if [ -n "$$order" ]; then $(call RELEASE,rustc) -p sigd --bin sigd $(1) -- \
		-C link-arg=-Wl,--symbol-ordering-file=$(CURDIR)/$$order; fi

# Tests that signal real processes run as pid 1 of their own PID namespace,
# so they can only ever hit their own children.
PID_NAMESPACE := unshare --pid --fork --mount-proc

# Tensorlake's Python SDK, to prove sigd speaks its API unchanged, and
# Schemathesis, to check sigd against openapi.yaml (separate venvs: their
# dependencies need not agree).
SDK_VENV := target/sdk-venv
TENSORLAKE_VERSION := 0.5.161
API_VENV := target/schemathesis-venv
SCHEMATHESIS_VERSION := 4.32.5

# The Python and JavaScript example policies, built from source by their
# own toolchains (componentize-py, ComponentizeJS; installed under target/).
EXAMPLES := target/example-policies

# Fuzzing: cargo-fuzz on the host's stable toolchain (RUSTC_BOOTSTRAP lets
# it use the -Z flags it needs), each target for FUZZ_SECONDS.
FUZZ_SECONDS ?= 20
FUZZ_TARGETS := proc_stat signal_request

# The benchmarks' tools: wrk and strace from Debian, matplotlib for the plot.
BENCH_VENV := target/bench-venv

SOAK_SECONDS ?= 120

.PHONY: build build-slim hot-functions baseline run test lint fuzz bench bench-shadow soak deb toolchain clean

build: toolchain
	$(call RELEASE,build) -p sigd --bins
	$(call LINK_HOT_FIRST,)
	mkdir -p target/release
	strip -o target/release/sigd target/$(HOST_TRIPLE)/release/sigd

# The slim build shares target/ with the full one (its own feature set, so
# neither rebuilds the other's crates); its binary is copied out at once,
# before a full build takes the name again.
build-slim: toolchain
	$(call RELEASE,build) -p sigd --bins --no-default-features
	$(call LINK_HOT_FIRST,--no-default-features)
	mkdir -p target/release
	strip -o target/release/sigd-slim target/$(HOST_TRIPLE)/release/sigd

# Record which functions both builds run (scripts/hot-functions.sh; needs
# valgrind): the list `build` and `build-slim` lay out first.
hot-functions: toolchain
	@command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
	$(call RELEASE,build) -p sigd --bins --no-default-features
	cp target/$(HOST_TRIPLE)/release/sigd target/sigd-slim.unstripped
	$(call RELEASE,build) -p sigd --bins
	scripts/hot-functions.sh record target/sigd-slim.unstripped target/$(HOST_TRIPLE)/release/sigd

deb: build
	@command -v dpkg-deb >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg >/dev/null; }
	packaging/deb.sh target/release/sigd target/debian

# The benchmarks' yardsticks (bench/): the default policy linked natively,
# and the bare server that makes only a signal's syscalls.
baseline: toolchain
	$(call RELEASE,build) -p sigd-bench --bin sigd-baseline --bin sigd-bare
	mkdir -p target/release
	strip -o target/release/sigd-baseline target/$(HOST_TRIPLE)/release/sigd-baseline
	strip -o target/release/sigd-bare target/$(HOST_TRIPLE)/release/sigd-bare

run: build
	./target/release/sigd serve --listen $(LISTEN)

test: toolchain build-slim $(SDK_VENV)/.installed $(API_VENV)/.installed
	@command -v strace >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }
	scripts/example-policies.sh $(EXAMPLES)
	$(TARGET_VAR)_RUNNER="$(PID_NAMESPACE)" SIGD_TEST_PYTHON="$(CURDIR)/$(SDK_VENV)/bin/python" \
		SIGD_EXAMPLE_POLICIES="$(CURDIR)/$(EXAMPLES)" SIGD_SLIM="$(CURDIR)/target/release/sigd-slim" \
		$(call RELEASE,test) -- --include-ignored
	tests/conformance/run.sh $(CURDIR)/target/$(HOST_TRIPLE)/release/sigd $(CURDIR)/$(API_VENV)/bin/schemathesis

lint: toolchain
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked -p sigd --no-default-features --lib --bins -- -D warnings

bench: build-slim build baseline $(BENCH_VENV)/.installed
	@command -v wrk >/dev/null && command -v strace >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk strace >/dev/null; }
	$(PID_NAMESPACE) $(BENCH_VENV)/bin/python bench/run.py

bench-shadow: build $(BENCH_VENV)/.installed
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PID_NAMESPACE) $(BENCH_VENV)/bin/python bench/shadow.py

soak: build
	SOAK_SECONDS=$(SOAK_SECONDS) $(PID_NAMESPACE) $(PYTHON) tests/soak/run.py target/release/sigd

$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check matplotlib
	touch $@

fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	for target in $(FUZZ_TARGETS); do \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --fuzz-dir fuzz $$target -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

toolchain:
	@scripts/wasm-toolchain.sh

$(SDK_VENV)/.installed:
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install --quiet --disable-pip-version-check tensorlake==$(TENSORLAKE_VERSION)
	touch $@

$(API_VENV)/.installed:
	$(PYTHON) -m venv $(API_VENV)
	$(API_VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION)
	touch $@

clean:
	$(CARGO) clean
