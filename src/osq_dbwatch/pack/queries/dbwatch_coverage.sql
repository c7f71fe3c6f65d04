-- name: dbwatch_coverage
-- variant: extension
-- interval: 3600
-- description: What this host's telemetry can and cannot see for database access, dumps and egress (audit process and socket events, file events on the dump roots, history files, extension health), one row per check with status ok, degraded or blind and how to fix it. Fleet policies fail on a blind check.
-- references: https://osquery.readthedocs.io/en/stable/deployment/process-auditing/, https://osquery.readthedocs.io/en/stable/deployment/file-integrity-monitoring/
-- false_positives: None: a health report.
-- tags: coverage, attack.an0676, linux, extension
SELECT {{columns}} FROM dbwatch_coverage;
