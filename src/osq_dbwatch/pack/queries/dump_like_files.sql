-- name: dump_like_files
-- variant: extension
-- interval: 300
-- description: Recently modified files under the dump roots that look like database dumps by name (.sql, .csv, .dump, ...) or by a content signature in their first 4 KiB (pg_dump, mysqldump, CSV, compressed), from the osq-dbwatch extension, with owner and, where still open, the writing process. A row is logged when a file first appears or changes.
-- references: https://attack.mitre.org/techniques/T1005/, https://attack.mitre.org/techniques/T1074/001/
-- false_positives: Scheduled backups kept under a watched root, exports users make on purpose.
-- tags: attack.collection, attack.t1074.001, attack.an0676, linux, extension
SELECT {{columns}} FROM dump_like_files;
