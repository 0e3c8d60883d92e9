#!/bin/sh
# The code sigd runs, laid out together in its binary.
#
# The kernel maps a binary's pages 64 KiB (or a whole large folio) at a
# time around each page a process touches. sigd's start-up and a signal
# request run about 1.6 MiB of the slim build's 6 MiB of machine code, but
# spread over nearly every 64 KiB of it, so nearly all of it was resident.
# `make build` and `make build-slim` link the binary a second time with
# lld's --symbol-ordering-file, the functions of host/hot-functions.txt
# first.
#
#   scripts/hot-functions.sh order BINARY DIR
#       write into DIR, as <sha256>.txt, the names in BINARY (unstripped)
#       of the functions listed in host/hot-functions.txt: lld's
#       --symbol-ordering-file. It prints the file's path, or nothing where
#       BINARY was not linked by lld (which alone takes the file). The name
#       changes with the content: cargo tracks a link's arguments, not the
#       files they name, and would keep a binary laid out by an old list.
#   scripts/hot-functions.sh record BINARY...
#       rewrite host/hot-functions.txt: the functions each BINARY
#       (unstripped) runs from exec through 20 signal requests at `info`,
#       under callgrind (valgrind, from Debian). `make hot-functions` runs
#       it for both builds; run that when start-up or the request path
#       changed much (tests/slim.rs fails when the slim build no longer
#       idles under its target).
#
# The list holds names as the binaries have them but for LLVM's
# `.llvm.<n>` suffix, which changes from build to build. The hash of a Rust
# symbol (`17h<16 hex digits>E`; in v0 names, the crates' `Cs<id>_`)
# changes with its crate's metadata (compiler version, features, the
# crate's dependencies; generic functions instantiated in sigd take sigd's
# hash): where a
# binary has none of the listed hashes of a name, every function of that
# name is taken (all instances of a generic function, more than were run),
# and a warning says so when they are more than a tenth as many as those
# found by hash (in the full build: 8 to 1,892 with a fresh list, 541 to
# 1,352 with one a new dependency of sigd's made stale, which left the
# slim build idling in 7.2 MiB instead of 5.3). A name the binary no longer has is
# skipped; its function stays where it was. Valgrind 3.19 does not know
# pidfd_open, so the few functions of the pidfd path are not recorded.
set -eu

LIST="$(dirname "$0")/../host/hot-functions.txt"
# nm's and sort's order must not depend on the locale: the layout would.
export LC_ALL=C

usage() {
    echo "usage: $0 order BINARY DIR | record BINARY..." >&2
    exit 2
}

# The functions $1 runs from exec through 20 signal requests, one name a line.
run_functions() {
    work=$(mktemp -d)
    target=
    server=
    trap 'kill $server $target 2>/dev/null || true; rm -rf "$work"' EXIT
    # A target that outlives SIGUSR1.
    sh -c 'trap "" USR1; exec sleep 600' &
    target=$!
    env -u SIGD_TOKEN RUST_LOG=info valgrind --tool=callgrind --demangle=no --compress-strings=no \
        --dump-instr=no --callgrind-out-file="$work/callgrind" \
        "$1" serve --listen 127.0.0.1:0 --no-cache 2>"$work/log" &
    server=$!
    port=
    for _ in $(seq 300); do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/log")
        [ -n "$port" ] && break
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$work/log" >&2; exit 1; }
    python3 - "$port" "$target" <<'EOF'
import http.client, sys
port, target = int(sys.argv[1]), int(sys.argv[2])
connection = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(20):
    connection.request("POST", f"/api/v1/processes/{target}/signal", '{"signal": 10}',
                       {"content-type": "application/json"})
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 200, answer.status
EOF
    kill "$server"
    wait "$server" || true
    sed -n -E 's/^c?fn=//p' "$work/callgrind" | grep -v -e '^0x' -e '^(' |
        sed -E -e "s/'[0-9]+\$//" -e 's/\.llvm\.[0-9]+$//'
    kill "$target"
    trap - EXIT
    rm -rf "$work"
}

[ $# -ge 2 ] || usage
command=$1
shift
case $command in
order)
    [ $# -eq 2 ] || usage
    binary=$1
    dir=$2
    [ -f "$binary" ] || {
        echo "$0: no binary $binary" >&2
        exit 1
    }
    if ! readelf -p .comment "$binary" 2>/dev/null | grep -q 'LLD'; then
        echo "$0: $binary was not linked by lld: its code stays in the linker's order" >&2
        exit 0
    fi
    mkdir -p "$dir"
    symbols=$(mktemp)
    order=$(mktemp)
    trap 'rm -f "$symbols" "$order"' EXIT
    nm --defined-only "$binary" >"$symbols"
    # Each function of the binary as "name-without-hashes name-without-suffix
    # name"; then the listed names, by hash where the binary has it, each once.
    awk '$2 ~ /^[tTwW]$/ { print $3 }' "$symbols" |
        sed -E -e 'h' -e 's/\.llvm\.[0-9]+$//' -e 'G' -e 's/\n/ /' \
            -e 'h' -e 's/ .*//' -e 's/17h[0-9a-f]{16}E$/17hE/' \
            -e '/^_R/ { s/Cs[0-9A-Za-z]+_/C/g; s/B[0-9A-Za-z]*_/B_/g; }' -e 'G' -e 's/\n/ /' |
        awk '
            FILENAME == "-" { n++; unhashed[n] = $1; full[n] = $2; name[n] = $3
                              if ($2 in listed) hashed[$1] = 1; next }
            /^#/ { next }
            { listed[$0] = 1
              if ($0 ~ /^_R/) { gsub(/Cs[0-9A-Za-z]+_/, "C"); gsub(/B[0-9A-Za-z]*_/, "B_") }
              else sub(/17h[0-9a-f]+E$/, "17hE")
              listed_unhashed[$0] = 1 }
            END { for (i = 1; i <= n; i++) {
                      by_name = unhashed[i] in listed_unhashed && !(unhashed[i] in hashed)
                      if (by_name) loose[unhashed[i]] = 1
                      if ((full[i] in listed || by_name) && !seen[name[i]]++)
                          print name[i]
                  }
                  exact = 0; for (k in hashed) exact++
                  inexact = 0; for (k in loose) inexact++
                  if (inexact * 10 > exact)
                      printf "hot-functions.sh: %d of the listed functions are in this binary by name only, %d by hash: `make hot-functions` records them again\n", inexact, exact > "/dev/stderr" }' "$LIST" - >"$order"
    [ -s "$order" ] || {
        echo "$0: none of the functions of $LIST is in $binary" >&2
        exit 1
    }
    path="$dir/$(sha256sum "$order" | cut -c1-16).txt"
    mv "$order" "$path"
    echo "$path"
    ;;
record)
    command -v valgrind >/dev/null || {
        echo "$0: record needs valgrind (apt-get install valgrind)" >&2
        exit 1
    }
    names=$(mktemp)
    for binary in "$@"; do
        run_functions "$binary" >>"$names"
    done
    {
        echo "# The functions sigd runs from exec through 20 signal requests, in the"
        echo "# slim and the full build: written by scripts/hot-functions.sh record,"
        echo "# which says what it is for."
        sort -u "$names"
    } >"$LIST"
    rm -f "$names"
    echo "$LIST: $(grep -vc '^#' "$LIST") functions"
    ;;
*) usage ;;
esac
