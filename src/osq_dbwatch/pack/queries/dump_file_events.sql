-- name: dump_file_events
-- variant: native
-- interval: 60
-- description: Files with a database-dump name (.sql, .csv, .tsv, .dump, .bak, .bson, .rdb, ..., also compressed: .sql.gz, .csv.zst) created, written or moved into the watched dump roots (/tmp, /var/tmp, /dev/shm, /home, /root, /var/www, /srv by default). owner is the file's owner, not necessarily the writer: inotify does not say who wrote.
-- references: https://attack.mitre.org/techniques/T1005/, https://attack.mitre.org/techniques/T1074/001/, https://osquery.readthedocs.io/en/stable/deployment/file-integrity-monitoring/
-- false_positives: Exports and reports users make on purpose (CSV files in home directories), backup jobs writing .sql.gz under a watched root, SELECT ... INTO OUTFILE files owned by mysql.
-- tags: attack.collection, attack.t1005, attack.t1074.001, attack.an0676, linux, inotify
--
-- Needs --enable_file_events and the file_paths of deploy/osquery.conf.d/dbwatch.conf.
SELECT fe.time, fe.target_path, fe.action, fe.inode, fe.uid, fe.size, fe.sha256,
  COALESCE(u.username, '') AS owner
FROM file_events AS fe
LEFT JOIN users AS u ON u.uid = fe.uid
WHERE fe.action IN ('CREATED', 'UPDATED', 'MOVED_TO')
  AND ({{dump_root_filter:fe.target_path}})
  AND {{dump_name_prefilter:fe.target_path}}
  AND regex_match(lower(fe.target_path), '{{dump_name_regex}}', 0) IS NOT NULL;
