"""The correlator: osquery results logs in, OCSF Detection Findings out.

logread (lines from files and stdin) -> rows (typed rows per query) ->
engine (pure per-host chain state machine) -> findings (OCSF / ECS), with
state (SQLite) holding offsets, host states and emitted findings between runs.
"""
