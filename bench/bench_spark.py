"""Events per second of `osq-dbwatch spark` at local[1] and local[2] next to `osq-dbwatch correlate`, in one run.

    python bench/bench_spark.py [--lines 1000000] [--hosts 1000] [--parts 8] [--files-per-batch 2] [--json FILE]

The log comes from bench/gen_log.py (cached under $TMPDIR/osq-dbwatch-bench),
split into `--parts` files that the Spark runs read `--files-per-batch` at a
time (several micro-batches, so the state is saved and reloaded between them).
Each contender runs in a process of its own:

- single: `osq-dbwatch correlate` on the whole log, fresh state; wall time.
- spark local[N]: the streaming query in a fresh checkpoint, timed from the
  query's start to its end (Spark's own start-up, the JVM and the session,
  is reported apart). Also reported: the state rows and memory the state
  store reports, the mean size of a host's saved state (the engine's JSON),
  and the checkpoint's size on disk.

Each chain's newest finding must agree between the three, or the run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gen_log

CONFIG = os.path.join(HERE, "config.yml")


def _du(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def finals(lines: list[str]) -> list[list[Any]]:
    best: dict[str, dict[str, Any]] = {}
    for line in lines:
        r = json.loads(line)
        uid = r["finding_info"]["uid"]
        if uid not in best or r["metadata"]["sequence"] > best[uid]["metadata"]["sequence"]:
            best[uid] = r
    # Stages are listed in the order their evidence arrived: compared as a set.
    return sorted([u, r["severity_id"], sorted(r["unmapped"]["stages"])] for u, r in best.items())


def run_single(log: str, work: str) -> dict[str, Any]:
    out = os.path.join(work, "single.jsonl")
    state = os.path.join(work, "single.sqlite")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "osq_dbwatch", "correlate", "--config", CONFIG, "--state", state,
                    "--output", out, log], check=True)
    seconds = time.perf_counter() - started
    import sqlite3

    with sqlite3.connect(state) as db:
        sizes = [len(row[0]) for row in db.execute("SELECT state FROM hosts")]
    with open(out) as handle:
        lines = [line for line in handle if line.strip()]
    return {"seconds": seconds, "findings": finals(lines), "records": len(lines),
            "host_state_bytes_mean": sum(sizes) / max(1, len(sizes)), "hosts": len(sizes)}


def worker(master: str, parts: str, work: str, files_per_batch: int, partitions: int) -> dict[str, Any]:
    """One Spark contender, in this process (called through --worker)."""
    from osq_dbwatch.config import load_config
    from osq_dbwatch.spark import job, sink

    started = time.perf_counter()
    spark = job.session(master, "osq-dbwatch-bench", {
        "spark.sql.shuffle.partitions": str(partitions), "spark.ui.enabled": "false", "spark.driver.memory": "2g",
        "spark.sql.streaming.noDataMicroBatches.enabled": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - started
    options = job.JobOptions(input=parts, checkpoint=os.path.join(work, "ck"), output=os.path.join(work, "out"),
                             once=True, max_files_per_trigger=files_per_batch)
    started = time.perf_counter()
    query = job.start(spark, load_config(CONFIG), options)
    query.awaitTermination()
    seconds = time.perf_counter() - started
    progress = [p if isinstance(p, dict) else json.loads(p.json) for p in query.recentProgress]
    rows = sum(int(p.get("numInputRows", 0)) for p in progress)
    last = next((p for p in reversed(progress) if p.get("stateOperators")), {})
    ops = last.get("stateOperators", [{}])
    state_rows = int(ops[0].get("numRowsTotal", 0)) if ops else 0
    memory = int(ops[0].get("memoryUsedBytes", 0)) if ops else 0
    # The saved states themselves, read back through Spark's state data source.
    sizes = spark.read.format("statestore").load(options.checkpoint).selectExpr("length(value.groupState.state) AS n")
    mean_state = sizes.agg({"n": "avg"}).collect()[0][0] or 0.0
    spark.stop()
    return {"master": master, "startup_seconds": startup, "seconds": seconds, "lines_read": rows,
            "batches": len(progress), "state_rows": state_rows, "state_memory_bytes": memory,
            "host_state_bytes_mean": float(mean_state),
            "checkpoint_bytes": _du(options.checkpoint), "state_dir_bytes": _du(os.path.join(options.checkpoint, "state")),
            "findings": finals(sink.read_findings(options.output))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=gen_log.Spec.seed)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--files-per-batch", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4, help="spark.sql.shuffle.partitions (default 4)")
    parser.add_argument("--masters", default="local[1],local[2]")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--worker", nargs=3, metavar=("MASTER", "PARTS", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.files_per_batch, args.partitions)))
        return 0
    log, meta = gen_log.cached(gen_log.Spec(args.lines, args.hosts, args.seed))
    lines = meta["lines"]
    with tempfile.TemporaryDirectory(prefix="osq-dbwatch-bench-spark-") as work:
        parts = os.path.join(work, "parts")
        os.makedirs(parts)
        with open(log, "rb") as handle:
            data = handle.readlines()
        size = -(-len(data) // args.parts)
        for index in range(args.parts):
            path = os.path.join(parts, f"part-{index:03d}.log")
            with open(path, "wb") as out:
                out.writelines(data[index * size:(index + 1) * size])
            os.utime(path, (1_700_000_000 + index, 1_700_000_000 + index))
        del data
        single = run_single(log, work)
        results: dict[str, Any] = {"log": {"lines": lines, "hosts": meta["hosts"], "bytes": os.path.getsize(log),
                                           "parts": args.parts, "files_per_batch": args.files_per_batch,
                                           "partitions": args.partitions},
                                   "single": {k: v for k, v in single.items() if k != "findings"}}
        results["single"]["events_per_second"] = lines / single["seconds"]
        print(f"single process: {lines} lines in {single['seconds']:.1f} s = {lines / single['seconds']:,.0f} lines/s",
              file=sys.stderr)
        for master in args.masters.split(","):
            spark_work = os.path.join(work, master.replace("[", "-").replace("]", ""))
            os.makedirs(spark_work)
            proc = subprocess.run([sys.executable, __file__, "--files-per-batch", str(args.files_per_batch),
                                   "--partitions", str(args.partitions), "--worker", master, parts, spark_work],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(f"{master}: the Spark run failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
                return 1
            figures = json.loads(proc.stdout.strip().splitlines()[-1])
            if figures["findings"] != single["findings"]:
                print(f"{master}: findings differ from the single process's", file=sys.stderr)
                return 1
            figures["findings"] = len(figures["findings"])
            figures["events_per_second"] = lines / figures["seconds"]
            results[master] = figures
            print(f"spark {master}: {lines} lines in {figures['seconds']:.1f} s = {figures['events_per_second']:,.0f} "
                  f"lines/s (start-up {figures['startup_seconds']:.1f} s, {figures['batches']} batches); "
                  f"state {figures['state_rows']} hosts, {figures['host_state_bytes_mean']:,.0f} B/host saved, "
                  f"{figures['state_memory_bytes'] / max(1, figures['state_rows']):,.0f} B/host in memory; "
                  f"checkpoint {figures['checkpoint_bytes'] / 1e6:.1f} MB", file=sys.stderr)
            shutil.rmtree(spark_work, ignore_errors=True)
        results["single"]["findings"] = len(single["findings"])
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
