#!/usr/bin/env bash
# The one probe for a toolchain that builds the wasm32-unknown-unknown
# policy guests, and its installer.
#
#   scripts/wasm-toolchain.sh          make sure one is there: install
#                                      Debian's if none is (run by `make`)
#   scripts/wasm-toolchain.sh --which  print which one to use, "installed"
#                                      or "debian", or fail saying how to
#                                      get one (run by host/build/wasm_guests.rs)
#
# In this order:
#   1. "installed": the host rustc's own wasm32-unknown-unknown std
#      (`rustup target add`); $RUSTC names that rustc, if set;
#   2. "debian": Debian's rustc-web + cargo-web + rust-web-src, building std
#      from source, linking with rust-lld (rust-web-llvm, a link to lld-22).
# SIGD_WASM_TOOLCHAIN=debian skips the first.
# Only (2) is installed here: rustup cannot download wasm targets on every
# machine (it hangs where its server is unreachable), apt can.
set -euo pipefail

target=wasm32-unknown-unknown

which_toolchain() {
  local sysroot
  sysroot=$("${RUSTC:-rustc}" --print sysroot 2>/dev/null || true)
  if [ "${SIGD_WASM_TOOLCHAIN:-}" != debian ] && [ -n "$sysroot" ] &&
    [ -d "$sysroot/lib/rustlib/$target/lib" ]; then
    echo installed
  elif [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && command -v rust-lld >/dev/null &&
    [ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
    echo debian
  else
    return 1
  fi
}

if [ "${1:-}" = --which ]; then
  which_toolchain || {
    echo "no Rust toolchain here can build $target policies. Fix: run" \
      "scripts/wasm-toolchain.sh (or make), which installs Debian's rustc-web, cargo-web," \
      "rust-web-src and lld; or rustup target add $target." >&2
    exit 1
  }
  exit 0
fi

if which_toolchain >/dev/null; then
  exit 0
fi

echo "wasm-toolchain: installing Debian's rustc-web, cargo-web, rust-web-src, rust-web-llvm and lld-22" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends rustc-web cargo-web rust-web-src rust-web-llvm lld-22 >/dev/null
which_toolchain >/dev/null || {
  echo "wasm-toolchain: installed, but /usr/bin/rustc, rust-lld or the std sources are still missing" >&2
  exit 1
}
