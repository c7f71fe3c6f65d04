-- name: admin_accounts
-- variant: native
-- interval: 3600
-- description: Members of admin-ish groups (a broad default set: sudo, wheel, admin, adm, dba, postgres, mysql, ..., plus admins.groups of the config the pack was rendered from), listed every hour. The correlator decides with its own admins.groups who is expected to run database clients on this host, so a pack rendered from defaults works with any site config.
-- references: https://attack.mitre.org/techniques/T1078/003/, https://osquery.io/schema/5.23.1/#user_groups
-- false_positives: None: an inventory, not an alert. An empty result means no member of any listed group exists here.
-- tags: inventory, attack.an0676, linux
SELECT u.uid, u.username, g.groupname
FROM groups AS g
JOIN user_groups AS ug ON ug.gid = g.gid
JOIN users AS u ON u.uid = ug.uid
WHERE g.groupname IN ({{admin_groups}});
