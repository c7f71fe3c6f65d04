-- name: transfer_exec
-- variant: audit
-- interval: 60
-- description: Transfer and staging tools (curl, wget, scp, rsync, rclone, nc, aws, gsutil, tar, zip, gzip, openssl, base64, ...) run in a login session, by a web server's account, or from a staging directory such as /tmp. After a database dump these are how data is packed and moved off the host.
-- references: https://attack.mitre.org/techniques/T1560/, https://attack.mitre.org/techniques/T1048/, https://attack.mitre.org/techniques/T1567/
-- false_positives: Administrators copying files or fetching packages by hand; deploy scripts run from a shell. Daemon and systemd-timer runs without a login session are left out on purpose (volume).
-- tags: attack.exfiltration, attack.collection, attack.t1560, attack.t1048, attack.an0676, linux, audit
--
-- Filter: catalog transfer/staging tool (basename, argv[0] or interpreted
-- script), and one of: a login session (auid set), a web account's uid, or an
-- executable under a staging directory.
{{exec_rows:audit}}
WHERE ({{transfer_tool_filter}})
  AND (ev.auid NOT IN (4294967295, -1)
       OR u.username IN ({{web_accounts}})
       OR {{staging_path_filter:ev.path}});
