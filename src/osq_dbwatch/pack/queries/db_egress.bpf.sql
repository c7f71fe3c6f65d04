-- name: db_egress
-- variant: bpf
-- interval: 60
-- description: Outbound connections to routable addresses (not loopback, link-local, multicast, reserved or in the configured internal networks), seen through osquery's eBPF socket events, made by a non-system user, a transfer tool, DB client or interpreter, or a program under a staging directory. eBPF events carry no login uid, so auid and login_user are empty here.
-- references: https://attack.mitre.org/techniques/T1048/, https://attack.mitre.org/techniques/T1041/, https://osquery.readthedocs.io/en/stable/deployment/process-auditing/
-- false_positives: Package managers, administrators' SSH and HTTPS sessions, application interpreters calling public APIs.
-- tags: attack.exfiltration, attack.t1048, attack.t1041, attack.an0676, linux, bpf
--
-- success and status follow the audit table: a connect that returned 0 is
-- 'succeeded', EINPROGRESS (-115, a non-blocking socket) 'in_progress', and
-- both count as made.
WITH conn AS (
  SELECT time, pid, path, uid, family, remote_address, remote_port,
    CASE WHEN exit_code IN ('0', '-115') THEN 1 ELSE 0 END AS success,
    CASE exit_code WHEN '0' THEN 'succeeded' WHEN '-115' THEN 'in_progress' ELSE 'failed' END AS status,
    CASE WHEN lower(remote_address) LIKE '::ffff:%.%.%.%' THEN substr(remote_address, 8)
         ELSE lower(remote_address) END AS addr,
    {{conn_name_columns}}
  FROM bpf_socket_events
  WHERE syscall = 'connect' AND family IN (2, 10) AND remote_address != ''
)
SELECT conn.time, conn.pid, conn.path, NULL AS auid, conn.family, conn.remote_address,
  conn.remote_port, conn.success, conn.status, '' AS login_user
FROM conn
WHERE NOT ({{local_address_filter:conn.addr}})
  AND NOT ({{internal_network_filter:conn.addr}})
  AND (conn.uid >= 1000 AND conn.uid < 4294967295
       OR {{egress_process_filter}}
       OR {{staging_path_filter:conn.path}});
