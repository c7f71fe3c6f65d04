-- name: db_cli_sessions
-- variant: extension
-- interval: 60
-- description: Database clients and dump tools running right now, from the osq-dbwatch extension: who runs them (user and login user), from which terminal, under which parent chain, systemd unit or service context, what they target (host, port, database) and whether the config's admins, service accounts, automation windows or allow rules cover them. A row is logged once, when the session first appears.
-- references: https://attack.mitre.org/techniques/T1213/006/, https://attack.mitre.org/techniques/T1005/
-- false_positives: DBAs at work, backup jobs, monitoring agents; the is_admin, service_context and allowed columns say which of these apply.
-- tags: attack.collection, attack.t1213, attack.an0676, linux, extension
SELECT {{columns}} FROM db_cli_sessions;
