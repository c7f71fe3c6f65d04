"""`osq-dbwatch spark`: the correlator as a Spark Structured Streaming job.

    osq-dbwatch spark --input DIR --checkpoint DIR --output DIR [--config FILE]
                      [--format ocsf|ecs] [--once] [--master URL] [--conf KEY=VALUE ...]

`spark-submit --master URL /path/to/bin/osq-dbwatch spark ...` runs it too (the
console script is a Python file); the session is then spark-submit's (docs/spark.md).
"""

from __future__ import annotations

import argparse
import sys

from ..cli import DbwatchError
from ..config import load_config


def _conf(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", metavar="DIR", help="directory (or glob) of osquery results logs, JSON lines")
    parser.add_argument("--kafka-bootstrap-servers", metavar="HOSTS",
                        help="read a Kafka topic instead of --input (needs the spark-sql-kafka package)")
    parser.add_argument("--kafka-topic", metavar="TOPIC", help="the topic Fleet's Kafka destination writes")
    parser.add_argument("--checkpoint", metavar="DIR", required=True, help="Spark checkpoint (offsets and host states)")
    parser.add_argument("--output", metavar="DIR", required=True, help="findings: one findings-<batch>.jsonl a micro-batch")
    parser.add_argument("--config", metavar="FILE", help="policy config (default /etc/osq-dbwatch/config.yml when present)")
    parser.add_argument("--format", choices=("ocsf", "ecs"), default="ocsf", help="finding format (default ocsf)")
    parser.add_argument("--once", action="store_true", help="process the input there now, then stop")
    parser.add_argument("--trigger-seconds", type=_positive, default=10, help="micro-batch interval (default 10)")
    parser.add_argument("--max-files-per-trigger", type=_positive, help="input files per micro-batch (default: all new)")
    parser.add_argument("--late-seconds", type=_positive,
                        help="watermark delay: rows this much older than the fleet's newest are dropped "
                             "(default: the config's correlator.state_expiry)")
    parser.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    parser.add_argument("--partitions", type=_positive,
                        help="spark.sql.shuffle.partitions: state partitions, fixed by the first run of a checkpoint "
                             "(default: a local master's cores, else Spark's 200)")
    parser.add_argument("--conf", type=_conf, action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark setting (repeatable)")


def run(args: argparse.Namespace) -> int:
    if bool(args.input) == bool(args.kafka_bootstrap_servers):
        raise DbwatchError("give exactly one of --input and --kafka-bootstrap-servers")
    if args.kafka_bootstrap_servers and not args.kafka_topic:
        raise DbwatchError("--kafka-bootstrap-servers needs --kafka-topic")
    config = load_config(args.config)
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise DbwatchError("pyspark is not installed: pip install 'osq-dbwatch[spark]' (and Java 17)") from None
    from . import job, sink

    options = job.JobOptions(
        input=args.input or "", checkpoint=args.checkpoint, output=args.output, format=args.format,
        late_seconds=args.late_seconds, max_files_per_trigger=args.max_files_per_trigger, once=args.once,
        trigger_seconds=args.trigger_seconds, kafka_servers=args.kafka_bootstrap_servers or "",
        kafka_topic=args.kafka_topic or "")
    conf = dict(args.conf)
    if args.partitions:
        conf["spark.sql.shuffle.partitions"] = str(args.partitions)
    elif "spark.sql.shuffle.partitions" not in conf and (cores := job.local_cores(args.master)):
        # Spark's default of 200 state partitions is 200 tasks and state stores a micro-batch; one machine
        # runs one a core. (A checkpoint keeps the number of its first run whatever is set later.)
        conf["spark.sql.shuffle.partitions"] = str(cores)
    try:
        spark = job.session(args.master, conf=conf)
    except Exception as exc:  # noqa: BLE001 - no Java, a bad master: one line
        raise DbwatchError(f"cannot start Spark: {_first_line(exc)}") from None
    try:
        query = job.start(spark, config, options)
        query.awaitTermination()
        batches = len(query.recentProgress)
    except sink.SinkError as exc:
        raise DbwatchError(str(exc)) from None
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - Spark's errors are pages of JVM trace
        raise DbwatchError(_first_line(exc)) from None
    finally:
        spark.stop()
    print(f"osq-dbwatch spark: stopped after {batches} micro-batches", file=sys.stderr)
    return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
