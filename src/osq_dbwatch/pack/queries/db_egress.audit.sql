-- name: db_egress
-- variant: audit
-- interval: 60
-- description: Outbound connections to routable addresses (not loopback, link-local, multicast, reserved or in the configured internal networks), made in a login session, by a transfer tool, DB client or interpreter, or by a program under a staging directory such as /tmp. After a dump this is how data leaves the host.
-- references: https://attack.mitre.org/techniques/T1048/, https://attack.mitre.org/techniques/T1041/, https://attack.mitre.org/techniques/T1567/
-- false_positives: Package managers and updates run from a shell, administrators' SSH and HTTPS sessions, interpreters (python, node, java) of applications that call public APIs.
-- tags: attack.exfiltration, attack.t1048, attack.t1041, attack.an0676, linux, audit
--
-- status is 'in_progress' for a non-blocking connect (most clients) and
-- 'succeeded' for a blocking one; agents before 5.x have no status column
-- (the correlator reads success for them).
-- IPv4-mapped IPv6 addresses are compared as IPv4. in_cidr_block() is only
-- called on an address of the CIDR's family (it errors otherwise).
WITH conn AS (
  SELECT time, pid, path, auid, family, remote_address, remote_port, success, status,
    CASE WHEN lower(remote_address) LIKE '::ffff:%.%.%.%' THEN substr(remote_address, 8)
         ELSE lower(remote_address) END AS addr,
    {{conn_name_columns}}
  FROM socket_events
  WHERE action = 'connect' AND family IN (2, 10) AND remote_address != ''
)
SELECT conn.time, conn.pid, conn.path, conn.auid, conn.family, conn.remote_address,
  conn.remote_port, conn.success, conn.status,
  CASE WHEN conn.auid IN (4294967295, -1) THEN '' ELSE COALESCE(lu.username, '') END AS login_user
FROM conn
LEFT JOIN users AS lu ON lu.uid = conn.auid
WHERE NOT ({{local_address_filter:conn.addr}})
  AND NOT ({{internal_network_filter:conn.addr}})
  AND (conn.auid NOT IN (4294967295, -1)
       OR {{egress_process_filter}}
       OR {{staging_path_filter:conn.path}});
