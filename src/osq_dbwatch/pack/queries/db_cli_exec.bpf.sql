-- name: db_cli_exec
-- variant: bpf
-- interval: 60
-- description: Database clients and dump tools started on this host, seen through osquery's eBPF process events (hosts running --enable_bpf_events). Same columns as the audit variant; eBPF events carry no login uid or effective uid, so auid, euid and login_user are empty here.
-- references: https://attack.mitre.org/techniques/T1005/, https://attack.mitre.org/techniques/T1213/006/, https://osquery.readthedocs.io/en/stable/deployment/process-auditing/
-- false_positives: DBAs at work, backup jobs, monitoring agents. Perl-wrapped PostgreSQL clients log two rows per run.
-- tags: attack.collection, attack.t1005, attack.t1213, attack.an0676, linux, bpf
--
-- Failed execs (exit_code other than 0) are dropped.
{{exec_rows:bpf}}
WHERE {{db_tool_filter}};
