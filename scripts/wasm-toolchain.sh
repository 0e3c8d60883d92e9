#!/usr/bin/env bash
# Make sure this machine can build the wasm32-unknown-unknown policy guests;
# install what is missing. Safe to run any number of times.
#
# host/build.rs uses, in this order:
#   1. the host rustc's own wasm32-unknown-unknown std (`rustup target add`);
#   2. Debian's rustc-web + cargo-web + rust-web-src, building std from source,
#      linking with rust-lld (rust-web-llvm, a link to lld-22).
# Only (2) is installed here: rustup cannot download wasm targets on every
# machine (it hangs where its server is unreachable), apt can.
set -euo pipefail

target=wasm32-unknown-unknown
sysroot=$(rustc --print sysroot 2>/dev/null || true)
if [ -n "$sysroot" ] && [ -d "$sysroot/lib/rustlib/$target/lib" ]; then
  exit 0 # rustc's own wasm std is installed
fi

debian_ready() {
  [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && command -v rust-lld >/dev/null &&
    [ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library" ]
}
if debian_ready; then
  exit 0
fi

echo "wasm-toolchain: installing Debian's rustc-web, cargo-web, rust-web-src, rust-web-llvm and lld-22" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends rustc-web cargo-web rust-web-src rust-web-llvm lld-22 >/dev/null
debian_ready || {
  echo "wasm-toolchain: installed, but /usr/bin/rustc, rust-lld or the std sources are still missing" >&2
  exit 1
}
