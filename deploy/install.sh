#!/bin/sh
# Install osq-dbwatch for osqueryd: the extension, the packs, the config
# fragments, the flags, the systemd drop-in, the osq-dbwatch config and the
# correlator's service (osq-dbwatch-correlate.service).
#
#   deploy/install.sh [--ext FILE] [--destdir DIR]      (or DESTDIR=DIR)
#
# --ext defaults to dist/osq_dbwatch.ext (deploy/build-bundle.sh). Everything
# is installed root-owned and not group- or world-writable, in directories
# that are not sticky: osquery refuses to autoload an extension otherwise.
# Existing /etc/osquery/osquery.flags and osquery.conf are left alone (ours go
# beside them as *.dbwatch for merging), so is an existing
# /etc/osq-dbwatch/config.yml; extensions.load gets our line once. As root,
# the correlator's system user osq-dbwatch is created (in DIR/etc when DIR
# has a passwd file) and given read access to osquery's results log.
set -eu

here=$(cd -- "$(dirname -- "$0")" && pwd -P)
repo=$(dirname -- "$here")
ext="$repo/dist/osq_dbwatch.ext"
destdir=${DESTDIR:-}

while [ $# -gt 0 ]; do
    case $1 in
        --ext) ext=$2; shift 2 ;;
        --ext=*) ext=${1#--ext=}; shift ;;
        --destdir) destdir=$2; shift 2 ;;
        --destdir=*) destdir=${1#--destdir=}; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

die() { echo "install.sh: $*" >&2; exit 1; }
# shellcheck source=deploy/install-lib.sh
. "$here/install-lib.sh"

if [ -n "$destdir" ]; then  # absolute: useradd/groupadd --prefix insist on it
    mkdir -p -- "$destdir" && destdir=$(cd -- "$destdir" && pwd -P) || die "cannot use --destdir $destdir"
fi

[ -f "$ext" ] || die "no extension at $ext (run deploy/build-bundle.sh, or pass --ext)"
[ -x "$ext" ] || die "$ext is not executable"
case $ext in *.ext) ;; *) die "osquery autoloads only files ending in .ext: $ext" ;; esac

if [ "$(id -u)" -eq 0 ]; then
    own="-o root -g root"
else
    own=""
    echo "install.sh: not root: files keep your ownership (fine for a package build root only)" >&2
fi

libdir=/usr/local/lib/osq-dbwatch
etc=/etc/osquery
d() { install -d $own -m "$1" "$destdir$2"; }
f() { install $own -m "$1" "$2" "$destdir$3"; }

d 0755 "$libdir"
d 0755 "$etc"
d 0755 "$etc/packs"
d 0755 "$etc/osquery.conf.d"
d 0755 /etc/systemd/system/osqueryd.service.d
d 0755 /etc/osq-dbwatch
d 0755 /var/lib/osq-dbwatch
d 0700 /var/lib/osq-dbwatch/tmp

f 0755 "$ext" "$libdir/osq_dbwatch.ext"
for pack in "$repo"/packs/dbwatch*.conf; do
    f 0644 "$pack" "$etc/packs/$(basename -- "$pack")"
done
for frag in "$here"/osquery.conf.d/dbwatch*.conf; do
    f 0644 "$frag" "$etc/osquery.conf.d/$(basename -- "$frag")"
done
f 0644 "$here/systemd/osqueryd.service.d/dbwatch.conf" /etc/systemd/system/osqueryd.service.d/dbwatch.conf

# The correlator's unit names the packaged path (/usr/lib/osq-dbwatch): point it at ours.
unit=osq-dbwatch-correlate.service
sed "s|/usr/lib/osq-dbwatch/|$libdir/|g" "$here/systemd/$unit" > "$destdir/etc/systemd/system/$unit.tmp"
f 0644 "$destdir/etc/systemd/system/$unit.tmp" "/etc/systemd/system/$unit"
rm -f "$destdir/etc/systemd/system/$unit.tmp"

if [ -e "$destdir/etc/osq-dbwatch/config.yml" ]; then
    echo "install.sh: kept your /etc/osq-dbwatch/config.yml" >&2
else
    f 0644 "$here/config.example.yml" /etc/osq-dbwatch/config.yml
fi

# osquery reads the conf.d fragments only when the main config exists.
if [ ! -e "$destdir$etc/osquery.conf" ]; then
    printf '{}\n' > "$destdir$etc/osquery.conf.tmp"
    f 0644 "$destdir$etc/osquery.conf.tmp" "$etc/osquery.conf"
    rm -f "$destdir$etc/osquery.conf.tmp"
fi
if [ -e "$destdir$etc/osquery.flags" ] && ! cmp -s "$here/osquery.flags" "$destdir$etc/osquery.flags"; then
    f 0644 "$here/osquery.flags" "$etc/osquery.flags.dbwatch"
    echo "install.sh: kept your $etc/osquery.flags; merge $etc/osquery.flags.dbwatch into it" >&2
else
    f 0644 "$here/osquery.flags" "$etc/osquery.flags"
fi

load="$destdir$etc/extensions.load"
line="$libdir/osq_dbwatch.ext"
if [ -e "$load" ]; then
    extensions_load_add "$load" "$line"
else
    f 0644 "$here/extensions.load" "$etc/extensions.load"
fi
chmod go-w "$load"

# The correlator's user, and read access to the results log through its group.
if [ -n "$own" ] && { [ -z "$destdir" ] || [ -f "$destdir/etc/passwd" ]; }; then
    gid=$(service_account "$destdir") || die "cannot create the system user $OSQ_DBWATCH_USER"
    share_results_log "$destdir" "$gid"
else
    echo "install.sh: no system user made here: create $OSQ_DBWATCH_USER on the target (see docs/deploy-package.md)" >&2
fi

# osquery's own safety check, repeated here so a bad install fails now and not
# silently at the next osqueryd start.
target="$destdir$libdir/osq_dbwatch.ext"
mode=$(stat -c %a "$target")
dmode=$(stat -c %a "$destdir$libdir")
case $mode in *[2367]?|*[2367]) die "$target is group- or world-writable ($mode)" ;; esac
case $dmode in [1-7]???) die "$destdir$libdir has a sticky/setuid bit ($dmode)" ;; esac
case $dmode in *[2367]?|*[2367]) die "$destdir$libdir is group- or world-writable ($dmode)" ;; esac
if [ -n "$own" ] && [ "$(stat -c %u "$target")" != 0 ]; then
    die "$target is not owned by root"
fi

echo "installed osq-dbwatch into ${destdir:-/}"
if [ -z "$destdir" ]; then
    echo "next: systemctl daemon-reload && systemctl restart osqueryd"
    echo "then: osq-dbwatch correlator as a service: systemctl enable --now osq-dbwatch-correlate"
fi
