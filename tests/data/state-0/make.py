"""How tests/data/state-0 was made (issue 12 item 4), with the correlator of main at bb9776e.

    python tests/data/state-0/make.py OUTDIR   # writes part-a.log.gz, part-b.log.gz, state-0.sql (kept gzipped: state-0.sql.gz), findings-a.jsonl

part-a + part-b is a bench log (bench/gen_log.py, 2,000 lines, 12 hosts) with three psql history rows added.
The state is the correlator's state after reading part-a only (OSQ_DBWATCH_BATCH_LINES=250): it holds pending
chains, closed-chain findings already emitted, pid maps, seen keys, baselines, admin groups and history
identities. It is kept as an SQL dump (sqlite3 .dump, gzipped), not as a binary SQLite file.
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, "bench"))
import gen_log

SPLIT = 1000  # lines of the generated log in part A
BATCH = "250"


def _history(host: str, t: int, user: str, uid: int, command: str, intent: str, out: str, counter: int) -> str:
    return json.dumps({
        "name": "pack_dbwatch_db_client_history", "hostIdentifier": host, "calendarTime": "", "unixTime": t,
        "epoch": 0, "counter": counter, "numerics": False,
        "decorations": {"host_uuid": "", "hostname": host},
        "diffResults": {"removed": [], "added": [{
            "uid": str(uid), "user": user, "file": f"/home/{user}/.psql_history", "file_mtime": str(t - 40),
            "line": "7", "from_tail": "0", "command": command, "engine": "postgres",
            "dump_like": "1" if intent else "0", "intent": intent, "output_path": out}]},
    })


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    raw = os.path.join(out, "gen.log")
    gen_log.generate(gen_log.Spec(lines=2000, hosts=12, seed=11, insider=3, webshell=2, access_only=3), raw)
    with open(raw) as handle:
        lines = handle.read().splitlines()
    t0 = json.loads(lines[SPLIT - 1])["unixTime"]
    a = lines[:SPLIT] + [
        _history("db-0001", t0 - 60, "heidi", 1031, "\\copy customers to '/tmp/h.csv' csv", "\\copy to", "/tmp/h.csv", 1),
        _history("db-0002", t0 - 30, "ivan", 1030, "select * from accounts limit 10;", "", "", 2),
    ]
    b = [_history("db-0001", t0 + 30, "heidi", 1031, "\\copy orders to '/tmp/o.csv' csv", "\\copy to", "/tmp/o.csv", 3)]
    b += lines[SPLIT:]
    for name, part in (("part-a.log.gz", a), ("part-b.log.gz", b)):
        with gzip.open(os.path.join(out, name), "wt") as handle:
            handle.write("\n".join(part) + "\n")
    with open(os.path.join(out, "a.log"), "w") as handle:
        handle.write("\n".join(a) + "\n")
    state = os.path.join(out, "state.sqlite")
    env = dict(os.environ, OSQ_DBWATCH_BATCH_LINES=BATCH)
    subprocess.run([sys.executable, "-m", "osq_dbwatch", "correlate", "--config", os.path.join(REPO, "bench", "config.yml"),
                    "--state", state, "--output", os.path.join(out, "findings-a.jsonl"), os.path.join(out, "a.log")],
                   check=True, env=env)
    db = sqlite3.connect(state)
    with open(os.path.join(out, "state-0.sql"), "w") as handle:
        handle.writelines(statement + "\n" for statement in db.iterdump())
    db.close()


if __name__ == "__main__":
    main(sys.argv[1])
