#!/usr/bin/env bash
# Build the example policies in examples/policies/{python,javascript} as
# components for wit/ (world `policy`):
#
#   scripts/example-policies.sh OUT_DIR [python|javascript ...]   (default: both)
#
# writes OUT_DIR/python.wasm and/or OUT_DIR/javascript.wasm. The tools are
# installed once under target/policy-kit (never into the source tree): a venv
# with componentize-py, and `npm ci` of examples/policies/javascript's
# lockfile. A stamp file per tool says it is done; delete target/policy-kit
# to start over. Safe to run any number of times, from any directory.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1 # ComponentizeJS is pinned in examples/policies/javascript

usage() { echo "usage: $0 OUT_DIR [python|javascript ...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
mkdir -p "$1"
out=$(cd "$1" && pwd)
shift
languages=("$@")
[ ${#languages[@]} -gt 0 ] || languages=(python javascript)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kit=$repo/target/policy-kit
cd "$repo" # the tools take wit/ and the sources by relative path

# Each tool is installed by one function, skipped when its stamp matches.
install_python() {
  local venv=$kit/py-venv stamp=$kit/py-venv/.installed
  [ "$(cat "$stamp" 2>/dev/null)" = "$COMPONENTIZE_PY_VERSION" ] && return
  echo "example-policies: installing componentize-py $COMPONENTIZE_PY_VERSION in $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
  echo "$COMPONENTIZE_PY_VERSION" >"$stamp"
}

install_javascript() {
  local dir=$kit/js src=examples/policies/javascript
  # The stamp is the lockfile's hash, so a new lockfile installs again.
  local want
  want=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
  [ "$(cat "$dir/.installed" 2>/dev/null)" = "$want" ] && return
  echo "example-policies: npm ci of $src/package-lock.json in $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$dir/.installed"
}

build_python() {
  # From a copy: importing the app at build time writes __pycache__ beside it.
  rm -rf "$kit/py-app"
  mkdir -p "$kit/py-app"
  cp examples/policies/python/*.py "$kit/py-app/"
  "$kit/py-venv/bin/componentize-py" --quiet -d wit -w policy componentize \
    -p "$kit/py-app" policy -o "$out/python.wasm"
}

build_javascript() {
  # Without `--disable http fetch-event` the component imports wasi:http,
  # which sigd does not link.
  "$kit/js/node_modules/.bin/componentize-js" --wit wit --world-name policy \
    --disable http fetch-event -o "$out/javascript.wasm" examples/policies/javascript/policy.js >/dev/null
}

# Wall time of each step, and the component's size.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds() { awk -v ms="$1" 'BEGIN { printf "%.1f s", ms / 1000 }'; }
for language in "${languages[@]}"; do
  case $language in python | javascript) ;; *) usage ;; esac
  start=$(now_ms)
  "install_$language"
  installed=$(now_ms)
  "build_$language"
  built=$(now_ms)
  size=$(stat -c %s "$out/$language.wasm")
  note=""
  [ $((installed - start)) -lt 1000 ] || note=", tools installed in $(seconds $((installed - start)))"
  echo "$language: $out/$language.wasm, $size bytes ($(awk -v b="$size" 'BEGIN { printf "%.1f MB", b / 1048576 }')), built in $(seconds $((built - installed)))$note"
done
