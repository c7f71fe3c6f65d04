-- name: db_client_history
-- variant: extension
-- interval: 300
-- description: New entries in database client history files (psql, mysql, mongosh, redis-cli, sqlite3) of every local user, from the osq-dbwatch extension, secrets redacted, with a flag for dump-like statements (COPY ... TO, INTO OUTFILE, \copy, SELECT * without a limit).
-- references: https://attack.mitre.org/techniques/T1213/006/, https://attack.mitre.org/techniques/T1005/
-- false_positives: DBAs exporting data on purpose; history written by automation accounts.
-- tags: attack.collection, attack.t1213, attack.an0676, linux, extension
SELECT {{columns}} FROM db_client_history;
