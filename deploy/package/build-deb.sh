#!/usr/bin/env bash
# Builds the Debian package strata_VERSION_ARCH.deb from a built broker binary:
#   deploy/package/build-deb.sh [--binary PATH] [--out DIR] [--compression TYPE]
#     --binary       the strata binary to package (default build/broker/strata,
#                    the release build of `deploy/setup.sh build`)
#     --out          where the .deb is written (default build/)
#     --compression  xz (default), gzip, zstd or none: dpkg-deb -Z
# `deploy/setup.sh package` builds the release binary and then this package.
# It prints the path of the .deb.
#
# The version is the binary's own (`strata --version`), which must agree with
# project(strata VERSION ...) in CMakeLists.txt. Depends comes from
# dpkg-shlibdeps (dpkg-dev) on the binary; without dpkg-shlibdeps, from the
# packages that own the libraries ldd resolves (dpkg -S), without versions.
# The package is built with `dpkg-deb --root-owner-group`: every file is
# root's, no fakeroot needed. What it installs: docs/operations.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pkg="$here/deploy/package"

binary="$here/build/broker/strata"
out="$here/build"
compression=xz
while (($#)); do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --compression) compression="$2"; shift 2 ;;
        *) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done

die() { echo "build-deb: $*" >&2; exit 1; }

if [[ ! -x $binary ]]; then
    die "no strata binary at $binary; build it with 'deploy/setup.sh build' (or build and package in one go with 'deploy/setup.sh package'), or pass --binary PATH"
fi
for tool in dpkg-deb dpkg; do
    command -v "$tool" >/dev/null || die "$tool is missing (it is part of Debian's dpkg)"
done

# The version: the binary's, checked against the sources it should come from.
version="$("$binary" --version | sed -n 's/^strata \([0-9][0-9.]*\)$/\1/p')"
[[ -n $version ]] || die "$binary --version did not print 'strata X.Y.Z'"
source_version="$(sed -n 's/^project(strata VERSION \([0-9.]*\).*/\1/p' "$here/CMakeLists.txt")"
if [[ $version != "$source_version" ]]; then
    die "$binary is version $version but CMakeLists.txt says $source_version; rebuild it"
fi
arch="$(dpkg --print-architecture)"

umask 022
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# debian/strata is the package root: the layout dpkg-shlibdeps expects.
root="$work/debian/strata"
mkdir -p "$root/DEBIAN"

# The binary, stripped when strip is available (the unstripped one stays out).
install -D -m 0755 "$binary" "$root/usr/bin/strata"
if command -v strip >/dev/null; then
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/strata"
fi

# Replaces the one line of FILE that is exactly OLD with NEW; any other count
# of such lines is an error (the shipped file changed: look at this script).
replace_line() {
    local file="$1" old="$2" new="$3"
    awk -v old="$old" -v new="$new" '$0 == old { print new; n++; next } { print } END { exit n != 1 }' \
        "$file" >"$file.new" || die "$file: expected exactly one line '$old'"
    mv "$file.new" "$file"
}

# The config: deploy/strata.yaml with its store under /var/lib/strata.
conf="$root/etc/strata/strata.yaml"
install -D -m 0644 "$here/deploy/strata.yaml" "$conf"
replace_line "$conf" \
    "  path: ./data               # default ./data; directory of the persistent store (retained messages, durable sessions)" \
    "  path: /var/lib/strata      # default ./data; directory of the persistent store (retained messages, durable sessions)"
replace_line "$conf" \
    "# (deploy/namespace/README.md). The path is relative to this file. A model" \
    "# (/usr/share/doc/strata/README.namespace.md). The path is relative to this file. A model"
replace_line "$conf" \
    "#   model: namespace/acme.yaml   # required when namespace is present" \
    "#   model: namespace/acme.yaml   # required when namespace is present; the example in /etc/strata/namespace"
"$binary" --config "$conf" --check-config >/dev/null || die "the packaged config does not pass --check-config"

# The example namespace model the config's comment points at (conffiles too,
# so a model edited in place survives an upgrade).
install -D -m 0644 "$here/deploy/namespace/acme.yaml" "$root/etc/strata/namespace/acme.yaml"
install -d "$root/etc/strata/namespace/schemas"
install -m 0644 "$here"/deploy/namespace/schemas/*.json "$root/etc/strata/namespace/schemas/"

# The systemd unit, started from where the package puts the binary.
unit="$root/lib/systemd/system/strata.service"
install -D -m 0644 "$here/deploy/strata.service" "$unit"
replace_line "$unit" \
    "ExecStart=/usr/local/bin/strata --config /etc/strata/strata.yaml" \
    "ExecStart=/usr/bin/strata --config /etc/strata/strata.yaml"

doc="$root/usr/share/doc/strata"
install -D -m 0644 "$pkg/copyright" "$doc/copyright"
install -m 0644 "$pkg/README.Debian" "$doc/README.Debian"
install -m 0644 "$here/deploy/namespace/README.md" "$doc/README.namespace.md"

# Every file under /etc is a conffile: dpkg keeps local edits on upgrade.
(cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"

for script in postinst prerm postrm; do
    install -m 0755 "$pkg/$script" "$root/DEBIAN/$script"
done

# Depends: the packages of the shared libraries the binary links.
if command -v dpkg-shlibdeps >/dev/null; then
    printf 'Source: strata\n\nPackage: strata\nArchitecture: %s\n' "$arch" >"$work/debian/control"
    depends="$(cd "$work" && dpkg-shlibdeps -O -edebian/strata/usr/bin/strata | sed -n 's/^shlibs:Depends=//p')"
else
    depends="$(ldd "$root/usr/bin/strata" | awk '$3 ~ /^\// { print $3 }' | while read -r lib; do
        dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib"
    done | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')"
fi
[[ -n $depends ]] || die "could not compute the package's dependencies"

installed_size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
cat >"$root/DEBIAN/control" <<EOF
Package: strata
Version: $version
Architecture: $arch
Maintainer: Strata developers <strata@localhost>
Installed-Size: $installed_size
Depends: adduser, $depends
Section: net
Priority: optional
Description: Unified Namespace MQTT broker for factories
 Strata is an MQTT 3.1.1 and 5.0 broker built to be the one event-driven
 data layer of a plant: it enforces an ISA-95 namespace model, grants access
 by the model's levels and classes, federates plant brokers into an
 enterprise broker and reads PLCs over OPC UA.
 .
 This package installs the broker, its configuration in /etc/strata and a
 hardened systemd unit that runs it as the strata user, with its data in
 /var/lib/strata.
EOF

mkdir -p "$out"
deb="$out/strata_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$root" "$deb" >/dev/null
echo "$deb"
