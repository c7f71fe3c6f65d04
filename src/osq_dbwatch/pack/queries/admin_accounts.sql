-- name: admin_accounts
-- variant: native
-- interval: 3600
-- description: Members of the configured database-administrator groups (admins.groups in the osq-dbwatch config), listed every hour so the correlator knows who is expected to run database clients on this host.
-- references: https://attack.mitre.org/techniques/T1078/003/, https://osquery.io/schema/5.23.1/#user_groups
-- false_positives: None: an inventory, not an alert. An empty result means no admin group is configured or none exists here.
-- tags: inventory, attack.an0676, linux
SELECT u.uid, u.username, g.groupname
FROM groups AS g
JOIN user_groups AS ug ON ug.gid = g.gid
JOIN users AS u ON u.uid = ug.uid
WHERE g.groupname IN ({{admin_groups}});
