#!/bin/bash
# Records issue 13 item 4's DBA (a member of dba: psql \\copy to her home) on this machine, as root: kernel audit (execve and connect, via auditd)
# and inotify (inotifywait) while a login user (loginuid set, as pam_loginuid does) runs the commands.
# Output: OUT/audit.log (raw audit records), OUT/inotify.log, OUT/stat.log (stat right after each step,
# what osquery's inotify handler reads), OUT/marks.log (phase boundaries, the session shell).
# tests/test_detect_admins_egress.py converts them to osquery 5.23.1 rows, runs the pack's SQL, then correlates.
# Needs auditd and inotify-tools (apt-get install auditd inotify-tools), PostgreSQL 15 and the test users
# of tests/dbservers.py. Tests read the committed recording; only re-recording needs root.
set -euo pipefail
OUT=${1:?usage: record_issue13_dba.sh OUTDIR}
USER_NAME=dbw_alice
W=/home/dbw_alice/exports
PEER=198.51.100.2; NS=dbw13nsb; VH=dbw13h1; VP=dbw13p1
mkdir -p "$OUT"; rm -rf "$W"; mkdir -p "$W"; chown dbw_alice: "$W"
# The DBA: a member of the admin group dba (removed again on exit).
groupadd -f dba; gpasswd -a dbw_alice dba >/dev/null
extra_cleanup() { rm -rf "$W"; gpasswd -d dbw_alice dba >/dev/null; [ -z "$(getent group dba | cut -d: -f4)" ] && groupdel dba; }
before_session() { mark "group|dba|$(getent group dba | cut -d: -f4)"; }
. "$(dirname "$0")/../record_common.sh"
mark "dba-begin"
run "psql -h 127.0.0.1 -U app -d shop -c \"\\copy customers to '$W/customers.csv' csv header\""
mark "dba-end"
finish
