#!/bin/sh
# Build sigd's Debian package with dpkg-deb: the binary, the systemd units,
# the default config (a conffile), the maintainer scripts (packaging/debian:
# the user sigd made at install) and the docs.
#   packaging/deb.sh BINARY DIR
# writes DIR/sigd_<version>_<arch>.deb and prints its path. `make deb` runs
# it on the stripped static release binary.
set -eu

binary=$1
dir=$2
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$top/Cargo.toml" | head -n 1)
arch=$(dpkg --print-architecture)
out="$dir/sigd_${version}_${arch}.deb"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"

install -D -s -m 755 "$binary" "$root/usr/bin/sigd"
install -D -m 644 "$here/sigd.service" "$root/usr/lib/systemd/system/sigd.service"
install -D -m 644 "$here/sigd.socket" "$root/usr/lib/systemd/system/sigd.socket"
install -D -m 644 "$here/sigd.toml" "$root/etc/sigd/sigd.toml"
doc="$root/usr/share/doc/sigd"
install -D -m 644 "$top/README.md" "$doc/README.md"
install -D -m 644 "$top/docs/policy-authoring.md" "$doc/policy-authoring.md"
install -D -m 644 "$top/openapi.yaml" "$doc/openapi.yaml"
printf 'sigd\n\nCopyright: the sigd authors\nLicense: Apache-2.0\n  See /usr/share/common-licenses/Apache-2.0.\n' \
    >"$doc/copyright"

install -d "$root/DEBIAN"
for script in postinst prerm postrm; do
    install -m 755 "$here/debian/$script" "$root/DEBIAN/$script"
done
echo /etc/sigd/sigd.toml >"$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/control" <<CONTROL
Package: sigd
Version: $version
Architecture: $arch
Maintainer: sigd <sigd@users.noreply.github.com>
Depends: adduser
Section: admin
Priority: optional
Homepage: https://github.com/sigd/sigd
Installed-Size: $(du -sk "$root" | cut -f1)
Description: POSIX signals over HTTP, decided by a WebAssembly policy
 sigd serves the Send Signal API (POST /api/v1/processes/{pid}/signal) on
 a Unix socket and loopback, as the user sigd holding only CAP_KILL,
 started by systemd socket activation.
CONTROL

mkdir -p "$dir"
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
echo "$out"
