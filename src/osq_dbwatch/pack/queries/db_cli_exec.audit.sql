-- name: db_cli_exec
-- variant: audit
-- interval: 60
-- description: Database clients and dump tools started on this host (psql, mysql, mysqldump, pg_dump, mongodump, redis-cli, ...), with who ran them (uid and login user) and the parent that launched them. Each row is one exec seen by the kernel audit subsystem; the correlator decides whether it was expected.
-- references: https://attack.mitre.org/techniques/T1005/, https://attack.mitre.org/techniques/T1213/006/, https://attack.mitre.org/detectionstrategies/DET0379/
-- false_positives: DBAs at work, backup jobs (cron, systemd timers, WAL archivers), monitoring agents polling the database. PostgreSQL clients on Debian are Perl wrappers, so one run logs two rows with the same pid (path /usr/bin/perl, then the real binary).
-- tags: attack.collection, attack.t1005, attack.t1213, attack.an0676, linux, audit
--
-- Filter: the executable's basename, argv[0]'s basename, or the script run by
-- an interpreter or shell (Perl wrapper, Python console script) is a catalog
-- DB tool; {{db_tool_filter}} is rendered from osq_dbwatch.catalog and the
-- config's extra_tools. Parent columns come from `processes` at query time
-- (empty when the parent is gone or its pid was reused after the exec).
{{exec_rows:audit}}
WHERE {{db_tool_filter}};
