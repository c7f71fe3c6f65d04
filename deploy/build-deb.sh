#!/bin/sh
# Build the osq-dbwatch .deb with dpkg-deb alone (no debhelper, no network):
# the one-file extension (deploy/build-bundle.sh), the packs and Fleet bundles,
# the osquery fragments and flags, the correlator's systemd unit and its
# config example, the Elastic files and the docs.
#
#   deploy/build-deb.sh [--ext FILE] [--out DIR]
#
# --ext defaults to dist/osq_dbwatch.ext, --out to dist/. Prints the path of
# the .deb. Files are root-owned in the package whoever builds it.
set -eu

here=$(cd -- "$(dirname -- "$0")" && pwd -P)
repo=$(dirname -- "$here")
ext="$repo/dist/osq_dbwatch.ext"
out="$repo/dist"

while [ $# -gt 0 ]; do
    case $1 in
        --ext) ext=$2; shift 2 ;;
        --ext=*) ext=${1#--ext=}; shift ;;
        --out) out=$2; shift 2 ;;
        --out=*) out=${1#--out=}; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "build-deb.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

die() { echo "build-deb.sh: $*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (Debian package dpkg)"
[ -f "$ext" ] && [ -x "$ext" ] || die "no executable extension at $ext (make bundle, or pass --ext)"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/pyproject.toml" | head -n 1)
[ -n "$version" ] || die "no version in pyproject.toml"
arch=$(dpkg --print-architecture)
# The bundle carries its own Python but links the build machine's glibc.
glibc=$(getconf GNU_LIBC_VERSION | sed -n 's/^glibc //p')

umask 022
mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/osq-dbwatch-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
share=/usr/share/osq-dbwatch

d() { install -d -m "$1" "$root$2"; }
f() { install -m "$1" "$2" "$root$3"; }

d 0755 /usr/lib/osq-dbwatch
f 0755 "$ext" /usr/lib/osq-dbwatch/osq_dbwatch.ext

d 0755 "$share"
f 0644 "$here/install-lib.sh" "$share/install-lib.sh"
f 0644 "$here/osquery.flags" "$share/osquery.flags"
f 0644 "$here/config.example.yml" "$share/config.example.yml"
for sub in packs elastic; do
    src="$repo/$sub"
    [ "$sub" = elastic ] && src="$here/elastic"
    (cd "$src" && find . -type f | sort) | while read -r rel; do
        d 0755 "$share/$sub/$(dirname -- "$rel")"
        f 0644 "$src/$rel" "$share/$sub/$rel"
    done
done
if [ -d "$repo/examples" ]; then
    (cd "$repo/examples" && find . -type f | sort) | while read -r rel; do
        d 0755 "$share/examples/$(dirname -- "$rel")"
        f 0644 "$repo/examples/$rel" "$share/examples/$rel"
    done
fi

# Configuration files (dpkg keeps local changes to them on upgrade).
d 0755 /etc/osquery/packs
d 0755 /etc/osquery/osquery.conf.d
d 0755 /etc/osq-dbwatch
for pack in "$repo"/packs/dbwatch*.conf; do
    f 0644 "$pack" "/etc/osquery/packs/$(basename -- "$pack")"
done
for frag in "$here"/osquery.conf.d/dbwatch*.conf; do
    f 0644 "$frag" "/etc/osquery/osquery.conf.d/$(basename -- "$frag")"
done
f 0644 "$here/config.example.yml" /etc/osq-dbwatch/config.yml

d 0755 /usr/lib/systemd/system/osqueryd.service.d
f 0644 "$here/systemd/osq-dbwatch-correlate.service" /usr/lib/systemd/system/osq-dbwatch-correlate.service
f 0644 "$here/systemd/osqueryd.service.d/dbwatch.conf" /usr/lib/systemd/system/osqueryd.service.d/dbwatch.conf

d 0755 /usr/share/doc/osq-dbwatch
for doc in deploy-package.md siem-output.md; do
    [ -f "$repo/docs/$doc" ] && f 0644 "$repo/docs/$doc" "/usr/share/doc/osq-dbwatch/$doc"
done
printf 'osq-dbwatch is licensed under the Apache License 2.0 (/usr/share/common-licenses/Apache-2.0).\n' \
    > "$root/usr/share/doc/osq-dbwatch/copyright"
chmod 0644 "$root/usr/share/doc/osq-dbwatch/copyright"

# The extension's unpack directory (TMPDIR in the osqueryd drop-in): root only.
d 0755 /var/lib/osq-dbwatch
d 0700 /var/lib/osq-dbwatch/tmp

d 0755 /DEBIAN
(cd "$root" && find etc -type f | sort | sed 's|^|/|') > "$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: osq-dbwatch
Version: $version
Architecture: $arch
Maintainer: osq-dbwatch developers <osq-dbwatch@users.noreply.invalid>
Installed-Size: $size
Depends: libc6 (>= $glibc), passwd
Recommends: osquery
Section: admin
Priority: optional
Description: osquery extension, query packs and correlator for database exfiltration
 Detects unusual database CLI access, dumps and egress (MITRE ATT&CK AN0676):
 an osquery extension (one self-contained executable), osquery packs and
 Fleet bundles, and a correlator service that turns osquery's results log
 into OCSF or ECS alerts.
CONTROL
for script in postinst prerm postrm; do
    f 0755 "$here/debian/$script" "/DEBIAN/$script"
done

deb="$out/osq-dbwatch_${version}_${arch}.deb"
# gzip: the bundle is compressed already (xz gains 1% for 10 times the time).
# SOURCE_DATE_EPOCH, when set, clamps the file times (reproducible builds).
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-gzip}" --build "$root" "$deb" >/dev/null
echo "$deb"
