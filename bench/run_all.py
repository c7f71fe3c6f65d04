"""Run every benchmark script in bench/ (bench_*.py) in turn; `make bench` calls this.

Each script runs in its own interpreter, so one benchmark's memory and
imports never colour another's figures. Extra arguments are passed to every
script (e.g. `--quick` where a script supports it). Exit status is non-zero
when any benchmark failed or missed its targets.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv: list[str]) -> int:
    scripts = sorted(glob.glob(os.path.join(HERE, "bench_*.py")))
    if not scripts:
        print("no bench/bench_*.py scripts found", file=sys.stderr)
        return 1
    failed: list[str] = []
    for script in scripts:
        name = os.path.basename(script)
        print(f"==> {name}", flush=True)
        started = time.perf_counter()
        status = subprocess.call([sys.executable, script, *argv])
        print(f"<== {name}: exit {status} after {time.perf_counter() - started:.1f}s\n", flush=True)
        if status != 0:
            failed.append(name)
    if failed:
        print("failed or missed targets: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
