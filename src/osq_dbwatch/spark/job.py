"""The Structured Streaming query: results lines in, findings out, host states in Spark's state store.

    lines (file or Kafka source)
      -> mapInPandas: host and event time of each line (rows.parse_line); lines of no correlated row dropped
      -> watermark on the event time (the late-data bound)
      -> groupBy(host).applyInPandasWithState: operator.HostOperator.step, the engine's own code
      -> foreachBatch: sink.write_batch, one file per micro-batch

Only the driver and the workers of a Spark job import this module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import Config
from . import operator as op
from . import sink

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming.query import StreamingQuery
    from pyspark.sql.streaming.state import GroupState

KEYED_SCHEMA = "host string, t long, event_time timestamp, line string"
OUTPUT_SCHEMA = "record_id string, chain_uid string, revision int, record string"
STATE_SCHEMA = "state string"


@dataclass
class JobOptions:
    input: str = ""  # directory (or glob) of JSON-lines files; ignored with kafka_servers
    checkpoint: str = ""
    output: str = ""
    format: str = "ocsf"
    late_seconds: int | None = None  # None: the config's state_expiry
    max_files_per_trigger: int | None = None
    once: bool = False  # process what is there, then stop (Trigger.AvailableNow)
    trigger_seconds: int = 10
    kafka_servers: str = ""
    kafka_topic: str = ""
    kafka_options: dict[str, str] = field(default_factory=dict)


def late_seconds(config: Config, options: JobOptions) -> int:
    return options.late_seconds if options.late_seconds is not None else config.correlator.state_expiry_seconds


def source(spark: SparkSession, options: JobOptions) -> DataFrame:
    """One column, `value`: a results line (a file's line, or a Kafka message as Fleet's Kafka destination sends it)."""
    if options.kafka_servers:
        reader = spark.readStream.format("kafka").option("kafka.bootstrap.servers", options.kafka_servers)
        reader = reader.option("subscribe", options.kafka_topic).option("startingOffsets", "earliest")
        for key, value in options.kafka_options.items():
            reader = reader.option(key, value)
        return reader.load().selectExpr("CAST(value AS STRING) AS value")
    reader = spark.readStream.format("text")
    if options.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", options.max_files_per_trigger)
    return reader.load(options.input)


def _key_lines(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    import pandas as pd

    for pdf in batches:
        hosts: list[str] = []
        times: list[int] = []
        lines: list[str] = []
        for line in pdf["value"]:
            if line is None:
                continue
            keyed = op.key_line(line)
            if keyed is None:
                continue
            hosts.append(keyed.host)
            times.append(keyed.time)
            lines.append(line)
        t = pd.Series(times, dtype="int64")
        yield pd.DataFrame({"host": pd.Series(hosts, dtype=object), "t": t,
                            "event_time": pd.to_datetime(t, unit="s", utc=True),
                            "line": pd.Series(lines, dtype=object)})


def findings_stream(spark: SparkSession, config: Config, options: JobOptions) -> DataFrame:
    """The stateful part: a stream of findings (OUTPUT_SCHEMA) from the source."""
    from pyspark.sql.streaming.state import GroupStateTimeout

    settings = op.Settings(format=options.format, late_seconds=late_seconds(config, options))
    blob = op.pack(config, settings)

    def per_host(key: tuple[Any, ...], batches: Iterator[pd.DataFrame], state: GroupState) -> Iterator[pd.DataFrame]:
        import pandas as pd

        operator = op.operator_for(blob)
        host = str(key[0])
        saved = state.get[0] if state.exists else None
        events: list[tuple[int, str]] = []
        if not state.hasTimedOut:
            for pdf in batches:
                events.extend(zip(pdf["t"].tolist(), pdf["line"].tolist()))
        result = operator.step(host, saved, events, state.hasTimedOut, state.getCurrentWatermarkMs())
        if result.state is None:
            state.remove()
        else:
            state.update((result.state,))
            state.setTimeoutTimestamp(result.timeout_ms)
        rows = op.outputs_rows(result.outputs)
        yield pd.DataFrame({name: pd.Series([r[name] for r in rows], dtype="int32" if name == "revision" else object)
                            for name in ("record_id", "chain_uid", "revision", "record")})

    keyed = source(spark, options).mapInPandas(_key_lines, KEYED_SCHEMA)
    keyed = keyed.withWatermark("event_time", f"{settings.late_seconds} seconds")
    return keyed.groupBy("host").applyInPandasWithState(
        per_host, OUTPUT_SCHEMA, STATE_SCHEMA, "append", GroupStateTimeout.EventTimeTimeout)


def start(spark: SparkSession, config: Config, options: JobOptions) -> StreamingQuery:
    """Start the query; findings go to options.output through sink.write_batch."""
    directory = sink.prepare(options.output)

    def write(batch: DataFrame, batch_id: int) -> None:
        # Findings are few (a chain's record per severity step): they are collected on the driver.
        rows = batch.select("record_id", "record").collect()
        sink.write_batch(directory, batch_id, ((r["record_id"], r["record"]) for r in rows))

    writer = findings_stream(spark, config, options).writeStream.foreachBatch(write)
    writer = writer.option("checkpointLocation", options.checkpoint).queryName("osq_dbwatch_findings")
    if options.once:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{options.trigger_seconds} seconds")
    return writer.start()


def local_cores(master: str | None) -> int | None:
    """The task slots of a local master (`local`, `local[4]`, `local[*]`, `local[4,2]`); None for any other."""
    if not master or not (master == "local" or master.startswith("local[")):
        return None
    if master == "local":
        return 1
    count = master[len("local["):].split(",")[0].rstrip("]")
    if count == "*":
        return os.cpu_count() or 1
    return int(count) if count.isdigit() and int(count) > 0 else None


def session(master: str | None, app_name: str = "osq-dbwatch", conf: dict[str, str] | None = None) -> SparkSession:
    """A SparkSession whose Python workers run this interpreter (the one osq_dbwatch is installed in)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master and master.startswith("local"):
        # A local run talks to itself only: the driver binds to loopback, not to the host's address.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
