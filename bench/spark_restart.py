"""Kill `osq-dbwatch spark` with SIGKILL mid-stream, restart it from its checkpoint, and compare with the single process.

    python bench/spark_restart.py [--lines 1000000] [--hosts 1000] [--batches 8] [--kills 2] [--json FILE]

The log is bench/gen_log.py's (the one bench/bench_correlate.py reads, cached
under $TMPDIR/osq-dbwatch-bench), cut into `--batches` files of equal line
counts that the stream reads one per micro-batch. The driver (its Python
process and its JVM, one process group) is killed `--kills` times at points
chosen by the checkpoint's progress, never by a clock:

- an odd kill waits until the sink has written batch N's findings file while
  batch N is not yet committed (Spark then reruns batch N and the sink
  rewrites the same file);
- an even kill comes as soon as batch N's offsets are logged (Spark reruns
  the whole batch from its write-ahead log).

After the last restart the stream runs to its end. The reference is
`osq-dbwatch correlate` on the whole log with its batch size set to the
stream's micro-batch (OSQ_DBWATCH_BATCH_LINES), so both flush findings at the
same lines: the sink must hold exactly the single process's records,
compared as sets of (chain id, severity, stages), the same number of
records, and no record key twice. Exits 1 on any difference.

tests/test_spark.py runs the same function on a smaller log in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gen_log

CONFIG = os.path.join(HERE, "config.yml")

# Spark settings for short runs on one small machine: few state partitions (the default 200 is a task and a
# state store each per micro-batch), no UI, a driver JVM tuned for a short life on few cores, and Python
# workers forked from a daemon that has imported pandas, pyarrow and the correlator once (spark/daemon.py).
LOCAL_CONF: dict[str, str] = {
    "spark.sql.shuffle.partitions": "2",
    "spark.ui.enabled": "false",
    "spark.driver.memory": "1g",
    "spark.sql.streaming.noDataMicroBatches.enabled": "false",
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    "spark.python.daemon.module": "osq_dbwatch.spark.daemon",
}

Key = tuple[str, int, tuple[str, ...]]


def keys(records: Iterable[dict[str, Any]]) -> set[Key]:
    """OCSF findings as (chain id, severity, stages); stages are listed in the order their evidence arrived,
    so they are compared as a set."""
    return {(r["finding_info"]["uid"], r["severity_id"], tuple(sorted(r["unmapped"]["stages"]))) for r in records}


def split(log: str, directory: str, parts: int) -> tuple[int, int]:
    """The log in `parts` files of equal line counts (the last may be shorter), older mtimes first (the
    file source's order); returns (lines, lines per part)."""
    os.makedirs(directory, exist_ok=True)
    with open(log, "rb") as handle:
        data = handle.readlines()
    size = -(-len(data) // parts)
    for index in range(parts):
        path = os.path.join(directory, f"part-{index:03d}.log")
        with open(path, "wb") as out:
            out.writelines(data[index * size:(index + 1) * size])
        os.utime(path, (1_700_000_000 + index, 1_700_000_000 + index))
    return len(data), size


def single(log: str, work: str, batch_lines: int, config: str = CONFIG) -> list[dict[str, Any]]:
    """`osq-dbwatch correlate` on the whole log, flushing findings every batch_lines lines."""
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, "single.jsonl")
    env = dict(os.environ, OSQ_DBWATCH_BATCH_LINES=str(batch_lines))
    subprocess.run([sys.executable, "-m", "osq_dbwatch", "correlate", "--config", config,
                    "--state", os.path.join(work, "single.sqlite"), "--output", out, log],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def spark_cli(parts: str, work: str, config: str = CONFIG, master: str = "local[2]",
              conf: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The job as its user runs it, in a process group of its own: a kill reaches the driver's JVM, nothing else."""
    settings = dict(LOCAL_CONF, **(conf or {}))
    partitions = settings.pop("spark.sql.shuffle.partitions")
    args = [sys.executable, "-m", "osq_dbwatch", "spark", "--input", parts, "--checkpoint", os.path.join(work, "ck"),
            "--output", os.path.join(work, "out"), "--config", config, "--once", "--max-files-per-trigger", "1",
            "--master", master, "--partitions", partitions]
    for key, value in settings.items():
        args += ["--conf", f"{key}={value}"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _ids(directory: str) -> set[int]:
    if not os.path.isdir(directory):
        return set()
    return {int(n) for n in os.listdir(directory) if n.isdigit()}


@dataclass
class Progress:
    """What the checkpoint and the sink show: batches started (offsets logged), committed, and with a findings file."""

    offsets: set[int]
    commits: set[int]
    written: set[int]


def progress(work: str) -> Progress:
    from osq_dbwatch.spark import sink

    out = os.path.join(work, "out")
    written = set()
    if os.path.isdir(out):
        written = {int(n[len(sink.PREFIX):-len(sink.SUFFIX)]) for n in os.listdir(out)
                   if n.startswith(sink.PREFIX) and n.endswith(sink.SUFFIX)}
    return Progress(_ids(os.path.join(work, "ck", "offsets")), _ids(os.path.join(work, "ck", "commits")), written)


@dataclass
class Kill:
    batch: int  # the micro-batch in flight
    point: str  # "after-sink-write" or "after-offsets"
    committed: int  # batches committed when it died
    seconds: float  # since the start of that driver


@dataclass
class Result:
    batches: int
    kills: list[Kill] = field(default_factory=list)
    starts: int = 0
    seconds: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)


class SparkFailed(Exception):
    pass


def _stderr(proc: subprocess.Popen[bytes]) -> str:
    return proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr else ""


def kill_points(batches: int, kills: int) -> list[int]:
    """The micro-batches to kill in, spread over the stream, never the first or the last."""
    points = sorted({max(1, min(batches - 2, round((k + 1) * batches / (kills + 1)) - 1)) for k in range(kills)})
    if len(points) != kills or batches < kills + 2:
        raise ValueError(f"{batches} micro-batches leave no room for {kills} kills in the middle")
    return points


def kill_restart(parts: str, work: str, batches: int, kills: int = 2, config: str = CONFIG,
                 master: str = "local[2]", conf: dict[str, str] | None = None, timeout: float = 1800) -> Result:
    """Stream `parts` (one file a micro-batch), SIGKILL the driver `kills` times mid-stream, restart it each time
    from the checkpoint, and let the last run finish. Returns the sink's records and where each kill fell."""
    from osq_dbwatch.spark import sink

    result = Result(batches)
    started = time.monotonic()
    for number, batch in enumerate(kill_points(batches, kills)):
        proc = spark_cli(parts, work, config, master, conf)
        result.starts += 1
        born = time.monotonic()
        after_sink = number % 2 == 0
        while True:
            if proc.poll() is not None:
                raise SparkFailed(f"the driver ended before kill {number + 1} (rc {proc.returncode}):\n{_stderr(proc)}")
            seen = progress(work)
            if batch in seen.commits:
                point = "after-commit"  # the batch had no findings file to wait for: kill at the next batch's start
                break
            if (after_sink and batch in seen.written) or (not after_sink and batch in seen.offsets):
                point = "after-sink-write" if after_sink else "after-offsets"
                break
            if time.monotonic() - started > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                raise SparkFailed(f"no progress to batch {batch} in {timeout:.0f} s")
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
        result.kills.append(Kill(batch, point, len(progress(work).commits), time.monotonic() - born))
    proc = spark_cli(parts, work, config, master, conf)
    result.starts += 1
    try:
        _, err = proc.communicate(timeout=max(60.0, timeout - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise SparkFailed(f"the last run did not finish in {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise SparkFailed(f"the last run failed (rc {proc.returncode}):\n{err.decode(errors='replace')[-3000:]}")
    result.seconds = time.monotonic() - started
    result.records = [json.loads(line) for line in sink.read_findings(os.path.join(work, "out"))]
    return result


def differences(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> list[str]:
    """Empty when the stream's records are exactly the single process's."""
    problems = []
    uids = [r["metadata"]["uid"] for r in got]
    if len(set(uids)) != len(uids):
        problems.append(f"{len(uids) - len(set(uids))} records twice")
    theirs_uids = {r["metadata"]["uid"] for r in expected}
    if set(uids) != theirs_uids:
        problems.append(f"{len(theirs_uids - set(uids))} record keys (chain id:revision) missing, "
                        f"{len(set(uids) - theirs_uids)} extra")
    if len(got) != len(expected):
        problems.append(f"{len(got)} records, the single process {len(expected)}")
    mine, theirs = keys(got), keys(expected)
    if mine != theirs:
        problems.append(f"{len(theirs - mine)} (chain, severity, stages) missing, {len(mine - theirs)} extra")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=gen_log.Spec.lines)
    parser.add_argument("--hosts", type=int, default=gen_log.Spec.hosts)
    parser.add_argument("--seed", type=int, default=gen_log.Spec.seed)
    parser.add_argument("--batches", type=int, default=8, help="micro-batches (files of the cut log; default 8)")
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    log, meta = gen_log.cached(gen_log.Spec(args.lines, args.hosts, args.seed))
    with tempfile.TemporaryDirectory(prefix="osq-dbwatch-spark-restart-") as work:
        parts = os.path.join(work, "parts")
        lines, per_batch = split(log, parts, args.batches)
        started = time.monotonic()
        expected = single(log, os.path.join(work, "single"), per_batch)
        single_seconds = time.monotonic() - started
        print(f"single process: {lines:,} lines, {len(expected)} records, {len(keys(expected))} distinct "
              f"(chain, severity, stages), {single_seconds:.1f} s", file=sys.stderr)
        try:
            result = kill_restart(parts, os.path.join(work, "spark"), args.batches, args.kills, master=args.master,
                                  conf={"spark.driver.memory": "2g"})
        except SparkFailed as exc:
            print(f"spark: {exc}", file=sys.stderr)
            return 1
        for kill in result.kills:
            print(f"kill: SIGKILL in micro-batch {kill.batch} ({kill.point}, {kill.committed} committed), "
                  f"{kill.seconds:.1f} s after that driver's start", file=sys.stderr)
        problems = differences(result.records, expected)
        chains = len({r["finding_info"]["uid"] for r in result.records})
        print(f"spark {args.master}: {lines:,} lines in {result.batches} micro-batches, {len(result.kills)} kills, "
              f"{result.starts} starts, {result.seconds:.1f} s wall; {len(result.records)} records, {chains} chains: "
              + ("exactly the single process's" if not problems else "DIFFERENT: " + "; ".join(problems)),
              file=sys.stderr)
        figures = {"log": {"lines": lines, "hosts": meta["hosts"], "bytes": os.path.getsize(log)},
                   "batches": result.batches, "lines_per_batch": per_batch, "master": args.master,
                   "kills": [asdict(k) for k in result.kills], "starts": result.starts,
                   "spark_seconds": result.seconds, "single_seconds": single_seconds,
                   "records": len(result.records), "expected_records": len(expected), "chains": chains,
                   "problems": problems}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=1)
    print(json.dumps(figures, indent=1))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
