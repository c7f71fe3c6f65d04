-- name: db_connect
-- variant: bpf
-- interval: 60
-- description: Connections to database servers' TCP ports (5432, 3306, 27017, 6379, 1433, 1521, 9042, 8123, 9000, ..., loopback included) seen through osquery's eBPF socket events, made by a non-system user or a program under a staging directory that is not a known database client, server or automation agent. eBPF events carry no login uid (auid is empty; login_user is the uid's name, standing in for it) and no Unix-socket path.
-- references: https://attack.mitre.org/techniques/T1005/, https://attack.mitre.org/techniques/T1213/006/, https://attack.mitre.org/techniques/T1036/003/
-- false_positives: Developers running applications, ORMs or test suites against a database; GUI clients and language shells with a database driver.
-- tags: attack.collection, attack.t1005, attack.t1213, attack.defense_evasion, attack.t1036.003, attack.an0676, linux, bpf
--
-- An addition to the contract's queries (2026-12, issue 13); see db_connect.audit.sql.
WITH conn AS (
  SELECT time, pid, path, uid, family, remote_address, remote_port,
    CASE WHEN exit_code IN ('0', '-115') THEN 1 ELSE 0 END AS success,
    CASE exit_code WHEN '0' THEN 'succeeded' WHEN '-115' THEN 'in_progress' ELSE 'failed' END AS status,
    {{conn_name_columns}}
  FROM bpf_socket_events
  WHERE syscall = 'connect' AND family IN (2, 10) AND remote_port IN ({{db_ports}})
)
SELECT conn.time, conn.pid, conn.path, NULL AS auid, conn.family, conn.remote_address,
  conn.remote_port, '' AS socket, conn.success, conn.status, COALESCE(u.username, '') AS login_user
FROM conn
LEFT JOIN users AS u ON u.uid = conn.uid
WHERE NOT {{db_connect_known_filter}}
  AND (conn.uid >= 1000 AND conn.uid < 4294967295
       OR {{staging_path_filter:conn.path}});
