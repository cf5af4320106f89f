"""Derived facts (policy.md §1) as DuckDB SQL models over the gate's staging tables.

`Sources` says, for the quarter and the earlier quarters of its twelve-month window W, which
extracts were accepted and where their staging Parquet lies. `load` turns them into one DuckDB
table per extract: snapshot extracts from the quarter itself, event extracts from every loaded
quarter of W whose extract passed (with a `quarter` column); a failed or missing extract is an
empty table of the right shape, so SQL never breaks on it (the rules that read it are not
evaluated: policy.md §4). `build` then runs the models of `sql/` in order, each as
`create table <model> as <select>`, with the parameters in effect on `E` bound, never formatted
into the SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from pipelines import SQL_DIR, gbt2260, parameters, quality
from pipelines.contracts import Contract, extract_contracts
from pipelines.quarters import Quarter

MODELS = (
    "int_person_signals",
    "int_person_income",
    "int_person_assets",
    "int_residential_properties",
    "fct_persons",
    "fct_roster_households",
    "fct_registry_households",
    "fct_candidate_households",
    "fct_data_findings",
)
WINDOW = 4  # quarters in W: the quarter and the three before it (policy.md, notation)
DUCKDB_TYPES = {
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
}
# parameters that are not the policy engine's (the gate's and the lifecycle's)
NOT_BOUND = {"max_quarantine_share", "min_snapshot_ratio", "escalate_after_quarters"}
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")

Key = tuple[str, str, str]  # (quarter, department, extract)


def table_name(department: str, extract: str) -> str:
    return f"{department}_{extract}"


@dataclass
class Sources:
    """What the gate accepted for a quarter and the earlier quarters of its window."""

    quarter: Quarter
    loaded: tuple[Quarter, ...]  # quarters of W that were processed, oldest first
    status: dict[Key, str] = field(default_factory=dict)  # PASSED, FAILED or MISSING
    staging: dict[Key, Path] = field(default_factory=dict)  # accepted rows, PASSED only

    @classmethod
    def from_out(cls, out: Path, quarter: Quarter) -> Sources:
        status, staging, loaded = {}, {}, []
        for q in quarter.window(WINDOW):
            results = quality.load_results(Path(out), str(q))
            if not results:
                continue  # never processed: W uses the quarters present
            loaded.append(q)
            for r in results:
                key = (str(q), r.department, r.extract)
                status[key] = r.status
                if r.status == "PASSED" and r.staging_path:
                    staging[key] = Path(r.staging_path)
        return cls(quarter, tuple(loaded), status, staging)

    def state(self, department: str, extract: str, quarter: Quarter | None = None) -> str:
        return self.status.get((str(quarter or self.quarter), department, extract), "MISSING")

    def failed(self, extracts: list[str]) -> list[str]:
        """`dept/extract STATUS` for each extract not accepted in the quarter itself."""
        out = []
        for name in extracts:
            department, extract = name.split("/")
            state = self.state(department, extract)
            if state != "PASSED":
                out.append(f"{name} {state}")
        return out

    def window_quarters(self, event_extracts: list[str]) -> int:
        """Quarters of W in which every one of these event extracts was accepted."""
        return sum(
            all(self.state(*name.split("/"), quarter=q) == "PASSED" for name in event_extracts)
            for q in self.loaded
        )


def event_extracts(names: list[str]) -> list[str]:
    kinds = {f"{c.department}/{c.extract}": c.is_snapshot for c in extract_contracts()}
    return [n for n in names if not kinds[n]]


DEFAULT_MEMORY = "10GB"  # DuckDB's own; Python's frames come on top (peak RSS in bench/README.md)


def connect(temp_directory: Path | None = None, memory_limit: str = DEFAULT_MEMORY):
    """A DuckDB connection that spills to disk past `memory_limit` (ENGINEERING.md)."""
    config: dict[str, Any] = {"memory_limit": memory_limit, "preserve_insertion_order": False}
    if temp_directory is not None:
        Path(temp_directory).mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(temp_directory)
    return duckdb.connect(":memory:", config=config)


def load(con: duckdb.DuckDBPyConnection, sources: Sources) -> dict[str, int]:
    """One table or view per extract; returns rows per table. An accepted snapshot is a view on
    its staging Parquet (DuckDB reads it where a model needs it, so the 42-million-row registry
    is never held in memory whole); event extracts, small, are gathered into a table with the
    quarter each row came from."""
    rows = {}
    for contract in extract_contracts():
        name = table_name(contract.department, contract.extract)
        snapshot = sources.staging.get(
            (str(sources.quarter), contract.department, contract.extract)
        )
        if contract.is_snapshot and snapshot is not None:
            cols = ", ".join(c.name for c in contract.columns)
            con.read_parquet(str(snapshot)).project(cols).create_view(name, replace=True)
            rows[name] = con.execute(f"select count(*) from {name}").fetchall()[0][0]
            continue
        columns = ", ".join(f"{c.name} {DUCKDB_TYPES[c.value_type]}" for c in contract.columns)
        extra = "" if contract.is_snapshot else ", quarter VARCHAR"
        con.execute(f"create or replace table {name} ({columns}{extra})")
        quarters = [] if contract.is_snapshot else list(sources.loaded)
        for q in quarters:
            path = sources.staging.get((str(q), contract.department, contract.extract))
            if path is not None:
                _insert(con, name, contract, path, str(q))
        rows[name] = con.execute(f"select count(*) from {name}").fetchall()[0][0]
    return rows


def _insert(con, name: str, contract: Contract, path: Path, quarter: str) -> None:
    cols = ", ".join(c.name for c in contract.columns)
    con.execute(
        f"insert into {name} select {cols}, $quarter from read_parquet($path)",
        {"path": str(path), "quarter": quarter},
    )


@dataclass
class Bound:
    """The parameters in effect on `E`: SQL values by `$name`, the values as reported in
    rule_runs, and the parameters with no value in effect (with the reason)."""

    sql: dict[str, Any]
    used: dict[str, Any]
    missing: dict[str, str]


def bind_parameters(con: duckdb.DuckDBPyConnection, quarter: Quarter) -> Bound:
    """Scalars become `$name` (ranges `$name_min`, `$name_max`); per-programme values the table
    `programme_parameters`; the dibao standard the table `county_standards` (county overrides
    prefecture)."""
    day = quarter.end
    sql: dict[str, Any] = {"quarter": str(quarter), "quarter_end": day}
    used: dict[str, Any] = {}
    missing: dict[str, str] = {}
    by_program: dict[str, dict[str, Any]] = {}
    standards: list[tuple[str, Decimal]] = []
    for name, p in parameters.parameters().items():
        if name in NOT_BOUND:
            continue
        try:
            value = p.at(day)
        except parameters.ParameterMissing as e:
            missing[name] = str(e)
            value = None
        if p.keyed_by == "area":
            for county in gbt2260.county_codes_in_force(day.year):
                if value is None:
                    break
                try:
                    standards.append((county, p.for_area(county, day)))
                except parameters.ParameterMissing as e:
                    missing[name] = str(e)
            used[name] = {k: _json(v) for k, v in (value or {}).items()}
        elif p.keyed_by == "program":
            for program, v in (value or {}).items():
                by_program.setdefault(program, {})[name] = v
            used[name] = {k: _json(v) for k, v in (value or {}).items()}
        elif p.keyed_by == "range":
            sql[f"{name}_min"] = None if value is None else int(value["min"])
            sql[f"{name}_max"] = None if value is None else int(value["max"])
            used[name] = None if value is None else {k: _json(v) for k, v in value.items()}
        else:
            sql[name] = value
            used[name] = _json(value)
    con.execute(
        "create or replace table programme_parameters (program VARCHAR, "
        "vehicle_value_limit DECIMAL(18, 2), medical_assistance_deductible DECIMAL(18, 2))"
    )
    for program in sorted(by_program):
        v = by_program[program]
        con.execute(
            "insert into programme_parameters values ($p, $v, $d)",
            {
                "p": program,
                "v": v.get("vehicle_value_limit"),
                "d": v.get("medical_assistance_deductible"),
            },
        )
    con.execute(
        "create or replace table county_standards "
        "(county_code VARCHAR, dibao_standard DECIMAL(18, 2))"
    )
    if standards:
        con.executemany("insert into county_standards values (?, ?)", standards)
    return Bound(sql, used, missing)


def _json(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, values: dict[str, Any]) -> None:
    """Execute with only the parameters the statement names, bound."""
    names = set(_PARAM.findall(sql))
    unknown = names - values.keys()
    if unknown:
        raise KeyError(f"SQL names parameters that are not bound: {sorted(unknown)}")
    con.execute(sql, {n: values[n] for n in names})


def model_sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def build(con: duckdb.DuckDBPyConnection, bound: Bound) -> dict[str, float]:
    """Run the macros and every model in order; returns seconds per model."""
    import time

    con.execute(model_sql("macros"))
    seconds = {}
    for name in MODELS:
        started = time.perf_counter()
        run_sql(con, f"create or replace table {name} as\n{model_sql(name)}", bound.sql)
        seconds[name] = round(time.perf_counter() - started, 3)
    return seconds
