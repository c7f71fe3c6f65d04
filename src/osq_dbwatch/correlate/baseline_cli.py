"""`osq-dbwatch baseline`: what the correlator learned, per host.

    osq-dbwatch baseline [--state FILE] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..cli import DbwatchError
from ..progress import Progress
from . import baseline as B
from .state import StateStore, default_state_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", metavar="FILE", help=f"state file (default {default_state_path()})")
    parser.add_argument("--json", action="store_true", help="one JSON object per host instead of a table")


def run(args: argparse.Namespace) -> int:
    path = args.state or default_state_path()
    if not os.path.exists(path):
        raise DbwatchError(f"{path}: no state file (run `osq-dbwatch correlate` first)")
    store = StateStore(path)
    habits = 0
    progress = Progress("baseline", unit="hosts", counter=lambda: habits, counter_name="habits", check_every=1)
    try:
        out = sys.stdout
        for state in progress.lines(store.hosts()):
            rows = B.describe(state.baseline)
            habits += len(rows)
            if args.json:
                out.write(json.dumps({
                    "host": state.host,
                    "observed_since": state.baseline.first,
                    "users": {u: v[0] for u, v in sorted(state.baseline.users.items())},
                    "runs": rows,
                    "pending_chains": len(state.chains),
                    "evictions": state.evictions,
                }, sort_keys=True) + "\n")
                continue
            out.write(f"{state.host}: {len(rows)} habits, users {', '.join(sorted(state.baseline.users)) or '-'}, "
                      f"{len(state.chains)} pending chains, {state.evictions} evicted\n")
            for r in rows:
                out.write(f"  {r['user']:<16} {r['tool']:<14} {r['parent'] or '-':<16} {r['when']:<14} x{r['count']}\n")
    finally:
        progress.close()
        store.close()
    return 0
