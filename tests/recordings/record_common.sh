# Shared body of the issue-13 recorders (sourced, never run alone): a throw-away PostgreSQL with a shop
# database, an upload sink at a TEST-NET-2 address in a network namespace of ours, kernel audit of execve
# and connect (auditd) and inotify over $W, then a login session of $USER_NAME that reads commands from a
# fifo. The caller sets OUT USER_NAME W PEER NS VH VP and defines extra_cleanup and before_session; it then
# calls run "command" and mark "label" for its steps and finish at the end.
BASE=$(mktemp -d /tmp/dbw13pg.XXXX); chmod 755 "$BASE"; chown postgres "$BASE"
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")
runuser -u postgres -- "$PGBIN/initdb" -D "$BASE/data" -U postgres --no-sync --auth-local=trust \
  --auth-host=trust --locale=C.UTF-8 >/dev/null
mkdir -p "$BASE/sock"; chown postgres "$BASE/sock"
PORT=5432
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$BASE/data" -l "$BASE/log" -w -o \
  "-c port=$PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$BASE/sock -c fsync=off" start >/dev/null
cleanup() {
  set +e
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$BASE/data" -m immediate stop >/dev/null 2>&1
  [ -n "${INW:-}" ] && kill "$INW"; [ -n "${SRV:-}" ] && kill "$SRV"
  auditctl -D -k dbw13 >/dev/null 2>&1
  [ -n "${AUD:-}" ] && kill "$AUD"
  ip link del $VH 2>/dev/null; ip netns del $NS 2>/dev/null
  rm -rf "$BASE"
  extra_cleanup
}
trap cleanup EXIT
psql_admin() { runuser -u postgres -- "$PGBIN/psql" -X -q -h "$BASE/sock" -p $PORT -U postgres "$@"; }
psql_admin -d postgres -c "CREATE DATABASE shop" -c "CREATE ROLE app LOGIN"
psql_admin -d shop -c "CREATE TABLE customers (id int, name text, card text); INSERT INTO customers
  SELECT g, 'customer ' || g, '4000-0000-0000-' || lpad(g::text, 4, '0') FROM generate_series(1, 500) g;
  GRANT SELECT ON customers TO app"
# An upload sink at a TEST-NET-2 address, in a network namespace of ours.
ip netns add $NS; ip link add $VH type veth peer name $VP; ip link set $VP netns $NS
ip addr add 198.51.100.1/30 dev $VH; ip link set $VH up
ip netns exec $NS ip addr add $PEER/30 dev $VP; ip netns exec $NS ip link set $VP up
ip netns exec $NS python3 -c "
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0))); self.send_response(201); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(('$PEER', 8080), H).serve_forever()" & SRV=$!
# Kernel audit: every execve and connect (osquery's audit subscriber asks for the same syscalls).
rm -f /var/log/audit/audit.log; /usr/sbin/auditd -n & AUD=$!; sleep 1
auditctl -a always,exit -F arch=b64 -S execve -k dbw13 >/dev/null
auditctl -a always,exit -F arch=b64 -S connect -k dbw13 >/dev/null
inotifywait -q -m -r "$W" -e create,modify,close_write,moved_from,moved_to --timefmt %s \
  --format '%T|%e|%w%f|%c' -o "$OUT/inotify.log" & INW=$!; sleep 1
: > "$OUT/stat.log"
snap() { for f in "$W"/*; do [ -e "$f" ] && stat -c "$(date +%s)|%i|%s|%u|%n" "$f" >> "$OUT/stat.log"; done; true; }
mark() { echo "$(date +%s)|$1" >> "$OUT/marks.log"; }
: > "$OUT/marks.log"
# The login session: loginuid set as pam_loginuid would, then the user's bash reads commands from a fifo.
FIFO=$BASE/cmds; mkfifo "$FIFO"; chmod 644 "$FIFO"
UIDN=$(id -u $USER_NAME)
bash -c "echo $UIDN > /proc/self/loginuid; exec runuser -u $USER_NAME -- bash --norc -i" < "$FIFO" \
  > "$OUT/session.out" 2>&1 & SH=$!
exec 9> "$FIFO"
sleep 1
SHELL_PID=$(pgrep -P $(pgrep -P $SH | head -1) -x bash || pgrep -P $SH -x bash || echo $SH)
before_session
mark "shell|$SHELL_PID|$(readlink /proc/$SHELL_PID/exe)|$(tr '\0' ' ' < /proc/$SHELL_PID/cmdline)"
run() { echo "cd ~; $1" >&9; sleep 2; snap; }
finish() {
  echo exit >&9; exec 9>&-
  sleep 2
  ausearch -k dbw13 --raw > "$OUT/audit.log" || true
  echo "base=$BASE port=$PORT" >> "$OUT/marks.log"
}
