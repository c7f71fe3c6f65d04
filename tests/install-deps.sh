#!/usr/bin/env bash
# Install what the live test suite needs on Debian 12: real database servers and
# clients from Debian packages, and mongosh from npm. Idempotent and quick when
# everything is present (no apt-get update then). Run as root by `make test`;
# CI runs it on a bare machine with CI=true and no stdin.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# Debian package -> a file it installs that proves it is present. Checking
# files (not dpkg state) keeps the no-op path to a few stat() calls.
declare -A PROBE=(
  [postgresql]=/usr/share/doc/postgresql/copyright
  [postgresql-client]=/usr/bin/pg_dump
  [mariadb-server]=/usr/sbin/mariadbd
  [mariadb-client]=/usr/bin/mariadb-dump
  [redis-server]=/usr/bin/redis-server
  [redis-tools]=/usr/bin/redis-cli
  [sqlite3]=/usr/bin/sqlite3
  [sudo]=/usr/bin/sudo
  [procps]=/usr/bin/ps
  [iproute2]=/usr/bin/ss
  [util-linux]=/usr/bin/setsid
  [bsdutils]=/usr/bin/script
  [passwd]=/usr/sbin/useradd
  [lsof]=/usr/bin/lsof
  [make]=/usr/bin/make
  [python3]=/usr/bin/python3
  [python3-venv]=/usr/share/doc/python3-venv/copyright
  [gzip]=/usr/bin/gzip
  [ca-certificates]=/etc/ssl/certs/ca-certificates.crt
  [curl]=/usr/bin/curl            # the end-to-end test uploads with it (into its own netns)
  [binutils]=/usr/bin/objcopy     # PyInstaller (bundle test) needs objdump and objcopy
  [openjdk-17-jre-headless]=/usr/share/doc/openjdk-17-jre-headless/copyright  # Java 17 for Spark (tests/test_spark.py)
  [systemd]=/usr/bin/systemd-analyze  # test_deb/test_deploy verify the correlator unit and rate its sandbox
  [dpkg]=/usr/bin/dpkg-deb        # test_deb builds and installs the .deb
  [chromium]=/usr/bin/chromium    # the report's browser tests (Playwright drives Debian's build, downloads none)
  [fonts-dejavu-core]=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf   # text in the report's screenshots
)

missing=()
for pkg in "${!PROBE[@]}"; do
  [ -e "${PROBE[$pkg]}" ] || missing+=("$pkg")
done
# PostgreSQL's server binaries live under a versioned directory.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
compgen -G '/usr/lib/postgresql/*/bin/pg_dump' >/dev/null || missing+=(postgresql-client)
# PyInstaller bundles Debian's python3 (statically linked) only with the shared
# libpython beside it; Debian 12's python3 is 3.11.
compgen -G '/usr/lib/*/libpython3.11.so.1.0' >/dev/null || missing+=(libpython3.11)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  # Maintainer scripts try to start the servers; there is no init system
  # here and the tests start their own instances, so deny service starts
  # while we install (restoring any existing policy afterwards).
  policy=/usr/sbin/policy-rc.d
  saved=""
  if [ -e "$policy" ]; then saved="$(mktemp)"; cp -p "$policy" "$saved"; fi
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  restore_policy() {
    if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
  }
  trap restore_policy EXIT
  apt-get update -q
  apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" </dev/null
  restore_policy
  trap - EXIT
fi

# mysql(1) is the name most people type; Debian's mariadb-client ships the
# symlink, but make sure it exists for the live tests either way.
if [ ! -e /usr/bin/mysql ] && [ -e /usr/bin/mariadb ]; then
  ln -s mariadb /usr/bin/mysql
fi

# mongosh is not in Debian: it comes from npm. Its absence is reported on one
# line and the mongosh live test then fails (it requires mongosh).
if ! command -v mongosh >/dev/null 2>&1; then
  if command -v npm >/dev/null 2>&1; then
    echo "install-deps: installing mongosh from npm" >&2
    if ! timeout 600 npm install -g --no-fund --no-audit --loglevel=error mongosh </dev/null >&2; then
      echo "install-deps: WARNING: 'npm install -g mongosh' failed; the mongosh live test will fail" >&2
    fi
  else
    echo "install-deps: WARNING: npm not found, mongosh not installed; the mongosh live test will fail" >&2
  fi
fi

exit 0
