-- name: db_connect
-- variant: audit
-- interval: 60
-- description: Connections to database servers (TCP ports such as 5432, 3306, 27017, 6379, 1433, 1521, 9042, 8123, 9000, loopback included, and, with --audit_allow_unix, database Unix sockets such as .s.PGSQL.5432 or mysqld.sock) made in a login session, or by a program under a staging directory, by a process that is not a known database client, server or automation agent. A renamed client (cp pg_dump /tmp/.x), a script or an implant is seen by what it talks to, not by its name.
-- references: https://attack.mitre.org/techniques/T1005/, https://attack.mitre.org/techniques/T1213/006/, https://attack.mitre.org/techniques/T1036/003/
-- false_positives: Developers running applications, ORMs or test suites against a database from a shell; GUI clients and language shells (python, irb) with a database driver; connection poolers started by hand.
-- tags: attack.collection, attack.t1005, attack.t1213, attack.defense_evasion, attack.t1036.003, attack.an0676, linux, audit
--
-- An addition to the contract's queries (2026-12, issue 13). Loopback is kept:
-- databases are often local. Unix-socket rows exist only where osqueryd runs
-- with --audit_allow_unix (optional, costly: docs/deploy-osquery.md).
-- Known clients are left out here: their exec (db_cli_exec) is the access.
WITH conn AS (
  SELECT time, pid, path, auid, family, remote_address, remote_port, socket, success, status,
    {{conn_name_columns}}
  FROM socket_events
  WHERE action = 'connect'
    AND ((family IN (2, 10) AND remote_port IN ({{db_ports}}))
         OR (family = 1 AND {{db_socket_filter:socket}}))
)
SELECT conn.time, conn.pid, conn.path, conn.auid, conn.family, conn.remote_address,
  conn.remote_port, conn.socket, conn.success, conn.status,
  CASE WHEN conn.auid IN (4294967295, -1) THEN '' ELSE COALESCE(lu.username, '') END AS login_user
FROM conn
LEFT JOIN users AS lu ON lu.uid = conn.auid
WHERE NOT {{db_connect_known_filter}}
  AND (conn.auid NOT IN (4294967295, -1)
       OR {{staging_path_filter:conn.path}});
