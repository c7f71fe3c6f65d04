-- name: dump_file_events
-- variant: native
-- interval: 60
-- description: Files with a database-dump name (.sql, .csv, .tsv, .dump, .bak, .bson, .rdb, ..., also compressed: .sql.gz, .csv.zst) created, written, renamed or moved into the watched dump roots (and the new name of a dump renamed to anything, such as notes.txt) (/tmp, /var/tmp, /dev/shm, /home, /root, /var/www, /srv by default). owner is the file's owner, not necessarily the writer: inotify does not say who wrote.
-- references: https://attack.mitre.org/techniques/T1005/, https://attack.mitre.org/techniques/T1074/001/, https://osquery.readthedocs.io/en/stable/deployment/file-integrity-monitoring/
-- false_positives: Exports and reports users make on purpose (CSV files in home directories), backup jobs writing .sql.gz under a watched root, SELECT ... INTO OUTFILE files owned by mysql.
-- tags: attack.collection, attack.t1005, attack.t1074.001, attack.an0676, linux, inotify
--
-- Needs --enable_file_events and the file_paths of deploy/osquery.conf.d/dbwatch.conf.
-- A rename (mv x.sql notes.txt) is MOVED_FROM (old name) then MOVED_TO (new
-- name) in the same second: both are kept when the old name is a dump's, so
-- the correlator can follow the chain's file to a name no dump filter knows.
SELECT fe.time, fe.target_path, fe.action, fe.inode, fe.uid, fe.size, fe.sha256,
  COALESCE(u.username, '') AS owner
FROM file_events AS fe
LEFT JOIN users AS u ON u.uid = fe.uid
WHERE ({{dump_root_filter:fe.target_path}})
  AND ((fe.action IN ('CREATED', 'UPDATED', 'MOVED_FROM', 'MOVED_TO')
        AND {{dump_name_prefilter:fe.target_path}}
        AND regex_match(lower(fe.target_path), '{{dump_name_regex}}', 0) IS NOT NULL)
       OR (fe.action = 'MOVED_TO'
           AND EXISTS (SELECT 1 FROM file_events AS mf
                       WHERE mf.action = 'MOVED_FROM' AND mf.time BETWEEN fe.time - 1 AND fe.time
                         AND {{dump_name_prefilter:mf.target_path}}
                         AND regex_match(lower(mf.target_path), '{{dump_name_regex}}', 0) IS NOT NULL)));
