"""Spark's Python worker daemon, with the job's Python modules imported once before it forks workers.

Opt-in: `--conf spark.python.daemon.module=osq_dbwatch.spark.daemon`. Spark's own
daemon (pyspark.daemon) forks one worker per task slot and each worker then
imports pandas, pyarrow and the correlator: seconds per worker, paid again by
every driver start. This daemon imports them first, so forked workers start
warm; it pays off where drivers are short-lived (tests, benchmarks, `--once`
jobs on a small machine).

pyspark.daemon imports the worker module only after the fork because a module
that starts a thread on import would leave the forked child with a lock held by
a thread that does not exist there. The two that do here are turned off before
the imports (OpenBLAS's thread pool: numpy; jemalloc's background thread:
pyarrow), and the daemon checks that it is still single-threaded; if it is
not, it says so and replaces itself (exec) with Spark's own daemon.
"""

from __future__ import annotations

import importlib
import os
import sys

# Set before numpy and pyarrow load their native libraries (a user's own value wins).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")

# What a worker of this job imports: Spark's worker and Arrow serializers, pandas and pyarrow, the correlator.
PRELOAD = ("pandas", "pyarrow", "pyspark.sql.pandas.serializers", "pyspark.worker",
           "osq_dbwatch.spark.job", "osq_dbwatch.spark.operator")


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1  # not Linux: unknown


def preload() -> bool:
    """Import what every worker of this job imports; False when the process is not single-threaded (before or after)."""
    if _threads() != 1:
        return False
    for name in PRELOAD:
        importlib.import_module(name)
    return _threads() == 1


def main() -> None:
    if preload():
        from pyspark import daemon

        daemon.manager()
        return
    print("osq_dbwatch.spark.daemon: not single-threaded after the imports; running pyspark.daemon instead",
          file=sys.stderr)
    # A fresh process: nothing imported, no thread; stdin and stdout (the JVM's pipe) are kept.
    os.execv(sys.executable, [sys.executable, "-m", "pyspark.daemon", *sys.argv[1:]])


if __name__ == "__main__":
    main()
