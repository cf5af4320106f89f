"""The Spark engine: the same facts and rules on Apache Spark SQL (the issue "Past one machine").

Every SQL text is translated from the portable subset by `portable.translate` (sqlglot, macros
expanded) and run with its `$names` bound as Spark's named parameters (`:name`), never formatted
into the text. A table the policy stage makes is a temporary view of a checkpointed DataFrame
(computed once, not again by every query reading it); the staging Parquet is read where a query
needs it. The session is the one given (dagster-pyspark's `LazyPySparkResource`'s when the job
runs, `local[*]`; a cluster's under `spark-submit`), or a local one of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlglot

from pipelines.policy import portable
from pipelines.policy.engine import DEFAULT_MEMORY, DuckDBEngine, Engine, bind

# a local session for tests and `safetynet run --engine spark` on one machine: few shuffle
# partitions (the default 200 would make 200 tasks of a handful of rows), ANSI SQL (overflow and
# invalid casts raise instead of turning into NULL), no UI; the driver's JVM with the throughput
# collector (G1's concurrent work takes a core from two: the three-quarter differential test
# measured 67 s of Spark policy with G1, 59-63 s with it)
LOCAL_CONFIG = {
    "spark.app.name": "safetynet",
    "spark.master": "local[*]",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.extraJavaOptions": "-XX:+UseParallelGC",
}


# what the SQL means depends on these: set on every session the engine is given, whoever made it
# (a cluster's `spark-submit` may not say them)
SEMANTIC_CONFIG = {
    "spark.sql.ansi.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    # an impossible date is NULL (`try_to_timestamp`), never rolled over as the legacy parser does
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
}
_MEMORY = re.compile(r"^\s*([0-9]+)\s*([KMGT])I?B?\s*$", re.IGNORECASE)


def spark_memory(limit: str) -> str:
    """`10GB` / `10 GiB` (DuckDB's spellings) as Spark's `10g`; anything else is refused."""
    found = _MEMORY.match(limit)
    if not found:
        raise ValueError(f"memory limit {limit!r} is not a number of KB, MB, GB or TB (e.g. 10GB)")
    return f"{found.group(1)}{found.group(2).lower()}"


def local_config(temp_directory: Path | None = None, memory_limit: str = DEFAULT_MEMORY) -> dict:
    """The settings of a local session: `LOCAL_CONFIG`, the driver's memory, where it spills."""
    config = {**LOCAL_CONFIG, "spark.driver.memory": spark_memory(memory_limit)}
    if temp_directory is not None:
        config["spark.local.dir"] = str(temp_directory)
    return config


def local_session(temp_directory: Path | None = None, memory_limit: str = DEFAULT_MEMORY):
    """A local Spark session outside Dagster (tests, benchmarks), made as dagster-pyspark's
    resource makes the job's: each setting on the builder, then `getOrCreate` (a JVM has one
    active session: a second call returns the first, whose settings stand)."""
    from pyspark.sql import SparkSession

    if temp_directory is not None:
        Path(temp_directory).mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in local_config(temp_directory, memory_limit).items():
        builder = builder.config(key, value)
    return quiet(builder.getOrCreate())


def quiet(session):
    """Spark's own log at ERROR: its warnings are for Spark's developers, not the run's log."""
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkEngine(Engine):
    """Spark SQL behind the engine seam."""

    name = "spark"
    # DuckDB's column types in Spark's spelling (sqlglot translates them, as it does the SQL),
    # but JSON: Spark has no such type, and evidence is text built once (portable.py)
    TYPES = {
        value_type: sqlglot.exp.DataType.build(duckdb_type, dialect="duckdb").sql("spark")
        for value_type, duckdb_type in DuckDBEngine.TYPES.items()
    } | {"json": "STRING"}

    def __init__(
        self,
        temp_directory: Path | None = None,
        memory_limit: str = DEFAULT_MEMORY,
        *,
        session=None,
    ):
        if session is None:
            session = local_session(temp_directory, memory_limit)
        elif temp_directory is not None:
            Path(temp_directory).mkdir(parents=True, exist_ok=True)
        for key, value in SEMANTIC_CONFIG.items():
            session.conf.set(key, value)
        self.spark = quiet(session)
        self.views: dict[str, Any] = {}  # the tables this session made -> their DataFrames

    def _register(self, table: str, frame, *, compute: bool = True) -> None:
        if compute:
            frame = frame.localCheckpoint(eager=True)  # computed once; lineage cut
        frame.createOrReplaceTempView(table)
        self.views[table] = frame

    def _schema(self, columns: Mapping[str, str]) -> str:
        return ", ".join(f"`{c}` {self.column_type(t)}" for c, t in columns.items())

    def reset(self) -> None:
        for table in list(self.views):
            self.spark.catalog.dropTempView(table)
            self.views.pop(table).unpersist()  # the checkpointed blocks too, not at the JVM's GC

    def define_macros(self, sql: str) -> None:
        portable.macros()  # expanded into every statement by `translate`; parsed once here

    def view_of_parquet(self, table: str, path: Path, columns: Sequence[str]) -> None:
        frame = self.spark.read.parquet(str(path)).select(*columns)
        frame.createOrReplaceTempView(table)  # read where a query needs it, like DuckDB's view
        self.views[table] = frame

    def create_table(self, table: str, columns: Mapping[str, str]) -> None:
        # an empty local relation, which Spark knows to be empty: a table made from Python rows
        # (`createDataFrame(list)`) is an RDD of unknown size, and every join with it, or with a
        # union holding it, would be a sort-merge join with two shuffles instead of a broadcast
        empty = self.spark.sql(
            "SELECT "
            + ", ".join(f"CAST(NULL AS {self.column_type(t)}) AS `{c}`" for c, t in columns.items())
            + " LIMIT 0"
        )
        self._register(table, empty, compute=False)  # nothing to compute

    def _append(self, table: str, frame, *, compute: bool = True) -> int | None:
        """`frame`'s rows after the table's. A query's rows are computed once (`compute`); a
        Parquet file's are read where a query needs them, as DuckDB's view does, and a few rows
        from Python stay the local relation they are."""
        target = self.views[table]
        frame = frame.toDF(*target.columns)
        frame = frame.select(
            *(
                frame[c].cast(t).alias(c)
                for c, t in zip(target.columns, _types(target), strict=True)
            )
        )
        added, count = frame, None
        if compute:
            # checkpointed by the count: one job computes the rows, keeps them and counts them
            # (an eager checkpoint and then a count would be two)
            added = frame.localCheckpoint(eager=False)
            count = added.count()
        union = target.unionAll(added)
        union.createOrReplaceTempView(table)
        self.views[table] = union
        return count

    def append_parquet(
        self, table: str, path: Path, columns: Sequence[str], constants: Mapping[str, Any]
    ) -> None:
        from pyspark.sql import functions as F

        frame = self.spark.read.parquet(str(path)).select(
            *columns, *(F.lit(v).alias(k) for k, v in constants.items())
        )
        self._append(table, frame, compute=False)

    def insert_rows(self, table: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if rows:
            from pyspark.sql.pandas.types import to_arrow_schema

            target = self.views[table]
            schema = to_arrow_schema(target.schema)
            columns = list(zip(*rows, strict=True))
            arrays = [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)]
            # a local relation, of known size (see `create_table`)
            frame = self.spark.createDataFrame(pa.Table.from_arrays(arrays, schema=schema))
            self._append(table, frame, compute=False)

    def table_from_arrow(self, table: str, rows: pa.Table) -> None:
        if table in self.views:
            self.spark.catalog.dropTempView(table)
        self._register(table, self.spark.createDataFrame(rows))

    def _sql(self, sql: str, values: Mapping[str, Any] | None):
        return self.spark.sql(portable.translate(sql), args=bind(sql, values or {}) or None)

    def create_table_as(self, table: str, sql: str, values: Mapping[str, Any]) -> None:
        self._register(table, self._sql(sql, values))

    def insert_select(self, table: str, sql: str, values: Mapping[str, Any]) -> int:
        return self._append(table, self._sql(sql, values))

    def arrow(self, sql: str, values: Mapping[str, Any] | None = None) -> pa.Table:
        return self._sql(sql, values).toArrow()

    def close(self) -> None:
        self.reset()


def _types(frame) -> list[str]:
    return [f.dataType.simpleString() for f in frame.schema.fields]
