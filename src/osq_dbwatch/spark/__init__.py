"""Fleet-scale correlation on Spark Structured Streaming (`osq-dbwatch spark`, docs/spark.md).

The correlator's engine runs unchanged inside Spark's stateful operator, one
state per host in the engine's own JSON form. `operator` and `sink` import no
Spark; `job` and `cli` need the `spark` extra (pyspark) and Java 17.
"""
