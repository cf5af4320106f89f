"""Derived facts (policy.md §1) as SQL models over the gate's staging tables.

`Sources` says, for the quarter and the earlier quarters of its twelve-month window W, which
extracts were accepted and where their staging Parquet lies (from the gate's results). `load`
turns them into one table per extract in the engine: snapshot extracts from the quarter itself,
event extracts from every loaded quarter of W whose extract passed (with a `quarter` column); a
failed or missing extract is an empty table of the right shape, so SQL never breaks on it (the
rules that read it are not evaluated: policy.md §4). `build` then runs the models of `sql/` in
order, each as `create table <model> as <select>`, with the parameters in effect on `E` bound,
never formatted into the SQL.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipelines.core import gbt2260, parameters
from pipelines.core.contracts import extract_contracts
from pipelines.core.quarters import Quarter
from pipelines.core.resources import sql_file
from pipelines.gate import accounting
from pipelines.policy.engine import Engine

MODELS = (
    "int_person_signals",
    "int_person_income",
    "int_person_assets",
    "int_residential_properties",
    "int_persons",
    "int_roster_households",
    "int_registry_households",
    "fct_persons",
    "fct_roster_households",
    "fct_registry_households",
    "fct_candidate_households",
    "fct_data_findings",
)
WINDOW = 4  # quarters in W: the quarter and the three before it (policy.md, notation)
# parameters that are not the policy engine's (the gate's and the lifecycle's)
NOT_BOUND = {
    "max_quarantine_share",
    "min_snapshot_ratio",
    "escalate_after_quarters",
    "dismissal_quarters",
}
# where keyed parameters reach SQL: one row per programme, a column per programme-keyed
# parameter; one row per county in force in E's year, a column per area-keyed parameter
PROGRAMME_TABLE = "programme_parameters"
AREA_TABLE = "county_standards"
_COLUMN_TYPE = {"amount": "money", "whole": "int"}  # else decimal (parameters.UNITS)


def parameter_tables() -> dict[str, tuple[str, ...]]:
    """The tables keyed parameters are bound as -> the parameters they hold (their columns)."""
    every = parameters.parameters()
    return {
        table: tuple(n for n, p in every.items() if p.keyed_by == kind and n not in NOT_BOUND)
        for table, kind in ((PROGRAMME_TABLE, "program"), (AREA_TABLE, "area"))
    }


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
            results = accounting.load_results(Path(out), str(q))
            if not results:
                continue  # never processed: W uses the quarters present
            loaded.append(q)
            for r in results:
                key = (str(q), r.department, r.extract)
                status[key] = r.status
                staged = r.staged(out)
                if r.status == "PASSED" and staged is not None:
                    staging[key] = staged
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


def load(engine: Engine, sources: Sources) -> None:
    """One table or view per extract. An accepted snapshot is a view on
    its staging Parquet (the engine reads it where a model needs it, so the 42-million-row
    registry is never held in memory whole); event extracts, small, are gathered into a table
    with the quarter each row came from."""
    for contract in extract_contracts():
        name = table_name(contract.department, contract.extract)
        columns = [c.name for c in contract.columns]
        snapshot = sources.staging.get(
            (str(sources.quarter), contract.department, contract.extract)
        )
        if contract.is_snapshot and snapshot is not None:
            engine.view_of_parquet(name, snapshot, columns)
            continue
        types = {c.name: c.value_type for c in contract.columns}
        engine.create_table(name, types if contract.is_snapshot else {**types, "quarter": "text"})
        quarters = [] if contract.is_snapshot else list(sources.loaded)
        for q in quarters:
            path = sources.staging.get((str(q), contract.department, contract.extract))
            if path is not None:
                engine.append_parquet(name, path, columns, {"quarter": str(q)})


@dataclass
class Bound:
    """The parameters in effect on `E`: SQL values by `$name`, the values as reported in
    rule_runs, and the parameters with no value in effect (with the reason)."""

    sql: dict[str, Any]
    used: dict[str, Any]
    missing: dict[str, str]


def bind_parameters(
    engine: Engine, quarter: Quarter, every: Mapping[str, parameters.Parameter] | None = None
) -> Bound:
    """Scalars become `$name` (ranges `$name_min`, `$name_max`); per-programme values the table
    `programme_parameters` (a column per parameter); per-area values the table
    `county_standards` (a column per parameter, the county's own value overriding its
    prefecture's). `every`: the parameters (`rules/parameters/`'s, unless a reform's:
    `policy/whatif.py`)."""
    day = quarter.end
    every = parameters.parameters() if every is None else every
    sql: dict[str, Any] = {"quarter": str(quarter), "quarter_end": day}
    used: dict[str, Any] = {}
    missing: dict[str, str] = {}
    by_program: dict[str, dict[str, Any]] = {}
    by_county: dict[str, dict[str, Decimal]] = {}
    for name, p in every.items():
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
                    by_county.setdefault(county, {})[name] = p.for_area(county, day)
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
    for table, key, held, rows in (
        (PROGRAMME_TABLE, ("program", "code"), parameter_tables()[PROGRAMME_TABLE], by_program),
        (AREA_TABLE, ("county_code", "county"), parameter_tables()[AREA_TABLE], by_county),
    ):
        types = {n: _COLUMN_TYPE.get(parameters.unit_kind(every[n].unit), "decimal") for n in held}
        engine.create_table(table, {key[0]: key[1], **types})
        engine.insert_rows(table, [(k, *(rows[k].get(n) for n in held)) for k in sorted(rows)])
    return Bound(sql, used, missing)


def _json(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v


def model_sql(name: str) -> str:
    return sql_file(name).read_text(encoding="utf-8")


def build(engine: Engine, bound: Bound) -> dict[str, float]:
    """Run the macros and every model in order; returns seconds per model."""
    engine.define_macros(model_sql("macros"))
    seconds = {}
    for name in MODELS:
        started = time.perf_counter()
        engine.create_table_as(name, model_sql(name), bound.sql)
        seconds[name] = round(time.perf_counter() - started, 3)
    return seconds
