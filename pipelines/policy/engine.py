"""The engine seam: what the policy stage asks of a SQL engine, and DuckDB's answer.

The fact models (`sql/`) and the rules (`rules/catalogue/`) are SQL texts in DuckDB's dialect
with `$name` parameters. Everything that depends on the engine running them — connecting and its
memory, column types, reading the staging Parquet, binding parameters, handing results back as
Arrow — is an `Engine` method; `facts.py`, `evaluate.py` and the lifecycle's comparison call
nothing else. DuckDB is the default (embedded, one process); Spark (`policy/spark.py`) runs the
same texts translated from the portable subset (`policy/portable.py`). `ENGINES` names both.

Column types are given as the contracts' value types (docs/contracts.md) plus `json`; each
engine maps them to its own (`Engine.TYPES`: DuckDB's here, Spark's translated from them).
"""

from __future__ import annotations

import abc
import importlib
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

# DuckDB's own (and a local Spark driver's); Python's frames come on top. 7GB keeps the province's
# quarter with a window of four under 12 GiB peak RSS, where 10GB reached 13.98 (bench/README.md)
DEFAULT_MEMORY = "7GB"
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


class UnboundParameter(KeyError):
    """A statement names a `$parameter` that was not bound."""


def parameters_named(sql: str) -> set[str]:
    """The `$names` a statement uses."""
    return set(_PARAM.findall(sql))


def bind(sql: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Exactly the parameters the statement names, bound; a name without a value is refused
    (values reach SQL only as bound parameters, never formatted into it)."""
    names = parameters_named(sql)
    unknown = names - values.keys()
    if unknown:
        raise UnboundParameter(f"SQL names parameters that are not bound: {sorted(unknown)}")
    return {n: values[n] for n in names}


class Engine(abc.ABC):
    """One session of a SQL engine for the policy stage (one quarter's facts and rules at a
    time; `reset` clears it for the next). An engine is opened as
    `Engine(temp_directory, memory_limit)`: where it may spill, and how much memory it may use."""

    name: ClassVar[str]
    TYPES: ClassVar[dict[str, str]]  # value type -> the engine's column type

    def column_type(self, value_type: str) -> str:
        return self.TYPES[value_type]

    @abc.abstractmethod
    def reset(self) -> None:
        """Drop every table and view an evaluation made, so the session can serve the next."""

    @abc.abstractmethod
    def define_macros(self, sql: str) -> None:
        """Run the shared macros (`sql/macros.sql`)."""

    @abc.abstractmethod
    def view_of_parquet(self, table: str, path: Path, columns: Sequence[str]) -> None:
        """`table` reads the Parquet file where a model needs it (never held whole)."""

    @abc.abstractmethod
    def create_table(self, table: str, columns: Mapping[str, str]) -> None:
        """An empty table of the named columns (value types)."""

    @abc.abstractmethod
    def append_parquet(
        self, table: str, path: Path, columns: Sequence[str], constants: Mapping[str, Any]
    ) -> None:
        """Append the Parquet file's `columns`, then the `constants` as further columns."""

    @abc.abstractmethod
    def insert_rows(self, table: str, rows: Iterable[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    def table_from_arrow(self, table: str, rows: pa.Table) -> None:
        """A table holding `rows` (an Arrow table's names and types), replacing any of the name."""

    @abc.abstractmethod
    def create_table_as(self, table: str, sql: str, values: Mapping[str, Any]) -> None:
        """A table of what the query selects, replacing any table or view of the name."""

    @abc.abstractmethod
    def insert_select(self, table: str, sql: str, values: Mapping[str, Any]) -> int:
        """Insert what the query selects; returns the rows inserted."""

    @abc.abstractmethod
    def arrow(self, sql: str, values: Mapping[str, Any] | None = None) -> pa.Table: ...

    def save_parquet(self, table: str, path: Path) -> bool:
        """Write the table to one Parquet file that DuckDB reads back with the same column
        types (the saved facts of `saved.save`); False where the engine cannot, as Spark (a
        folder of parts, JSON as text), and nothing is written."""
        return False

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBEngine(Engine):
    """DuckDB in memory, spilling to `temp_directory` past `memory_limit` (so a province's joins
    stay clear of the OOM killer), on `threads` threads (default: one per core)."""

    name = "duckdb"
    TYPES = {
        "id": "VARCHAR",
        "text": "VARCHAR",
        "code": "VARCHAR",
        "county": "VARCHAR",
        "date": "DATE",
        "month": "DATE",
        "money": "DECIMAL(18, 2)",
        "bool": "BOOLEAN",
        "int": "BIGINT",
        "decimal": "DOUBLE",
        "json": "JSON",
    }

    def __init__(
        self,
        temp_directory: Path | None = None,
        memory_limit: str = DEFAULT_MEMORY,
        *,
        threads: int | None = None,
    ):
        config: dict[str, Any] = {"memory_limit": memory_limit, "preserve_insertion_order": False}
        if threads is not None:
            config["threads"] = threads
        if temp_directory is not None:
            Path(temp_directory).mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(temp_directory)
        self.con = duckdb.connect(":memory:", config=config)

    def reset(self) -> None:
        made = self.con.execute(
            "select view_name, 'view' from duckdb_views() where not internal and "
            "schema_name = 'main' union all "
            "select table_name, 'table' from duckdb_tables() where schema_name = 'main'"
        ).fetchall()
        for name, kind in made:
            self.con.execute(f'drop {kind} if exists "{name}"')

    def define_macros(self, sql: str) -> None:
        self.con.execute(sql)

    def view_of_parquet(self, table: str, path: Path, columns: Sequence[str]) -> None:
        self.con.read_parquet(str(path)).project(", ".join(columns)).create_view(
            table, replace=True
        )

    def create_table(self, table: str, columns: Mapping[str, str]) -> None:
        spec = ", ".join(f"{c} {self.column_type(t)}" for c, t in columns.items())
        self.con.execute(f"create or replace table {table} ({spec})")

    def append_parquet(
        self, table: str, path: Path, columns: Sequence[str], constants: Mapping[str, Any]
    ) -> None:
        extra = "".join(f", ${name}" for name in constants)
        self.con.execute(
            f"insert into {table} select {', '.join(columns)}{extra} from read_parquet($path)",
            {**constants, "path": str(path)},
        )

    def insert_rows(self, table: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:  # one insert of a whole Arrow table: `executemany` plans every row again
            columns = [pa.array(list(values)) for values in zip(*rows, strict=True)]
            batch = pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(columns))])
            self.con.register("_rows", batch)
            try:
                self.con.execute(f"insert into {table} select * from _rows")
            finally:
                self.con.unregister("_rows")

    def table_from_arrow(self, table: str, rows: pa.Table) -> None:
        self.con.register("_rows", rows)
        try:
            self.con.execute(f"create or replace table {table} as select * from _rows")
        finally:
            self.con.unregister("_rows")

    def create_table_as(self, table: str, sql: str, values: Mapping[str, Any]) -> None:
        statement = f"create or replace table {table} as\n{sql}"
        # a view of the name (a saved fact read in place: policy/whatif.py) is not replaced by
        # `create or replace table`
        if self.con.execute(
            "select 1 from duckdb_views() where view_name = $name and schema_name = 'main' "
            "and not internal",
            {"name": table},
        ).fetchall():
            self.con.execute(f'drop view "{table}"')
        self.con.execute(statement, bind(statement, values))

    def insert_select(self, table: str, sql: str, values: Mapping[str, Any]) -> int:
        statement = f"insert into {table}\n{sql}"
        return self.con.execute(statement, bind(statement, values)).fetchall()[0][0]

    def arrow(self, sql: str, values: Mapping[str, Any] | None = None) -> pa.Table:
        return self.con.sql(sql, params=bind(sql, values or {}) or None).to_arrow_table()

    def save_parquet(self, table: str, path: Path) -> bool:
        self.con.execute(f"copy {table} to '{_quoted(path)}' (format parquet)")
        return True

    def close(self) -> None:
        self.con.close()


def _quoted(path: Path) -> str:
    """A path as a SQL string literal's content (COPY takes no bound parameter for it)."""
    return str(path).replace("'", "''")


# name -> where the engine's class is (imported when chosen: Spark's module needs pyspark)
ENGINES: dict[str, str] = {
    "duckdb": "pipelines.policy.engine:DuckDBEngine",
    "spark": "pipelines.policy.spark:SparkEngine",
}


def engine_class(name: str) -> type[Engine]:
    """The engine of that name (`ENGINES`); a name not there is refused, naming the choices."""
    if name not in ENGINES:
        raise ValueError(f"engine {name!r} is not one of {', '.join(sorted(ENGINES))}")
    module, _, cls = ENGINES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def open_engine(
    name: str,
    temp_directory: Path | None = None,
    memory_limit: str = DEFAULT_MEMORY,
    *,
    spark_session: Any = None,
) -> Engine:
    """A session of the engine of that name; Spark's in `spark_session` where one is given (the
    Dagster `pyspark` resource's), else a local one."""
    if name == "spark":
        return engine_class(name)(temp_directory, memory_limit, session=spark_session)
    return engine_class(name)(temp_directory, memory_limit)
