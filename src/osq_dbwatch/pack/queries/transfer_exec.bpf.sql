-- name: transfer_exec
-- variant: bpf
-- interval: 60
-- description: Transfer and staging tools run by a web server's account or from a staging directory, seen through osquery's eBPF process events. eBPF events carry no login uid, so the login-session branch of the audit variant is replaced by "any non-system user" (uid 1000 and up).
-- references: https://attack.mitre.org/techniques/T1560/, https://attack.mitre.org/techniques/T1048/, https://osquery.readthedocs.io/en/stable/deployment/process-auditing/
-- false_positives: Users copying files or fetching packages by hand; deploy scripts.
-- tags: attack.exfiltration, attack.collection, attack.t1560, attack.t1048, attack.an0676, linux, bpf
{{exec_rows:bpf}}
WHERE ({{transfer_tool_filter}})
  AND (ev.uid >= 1000 AND ev.uid < 4294967295
       OR u.username IN ({{web_accounts}})
       OR {{staging_path_filter:ev.path}});
