"""What if the standard rises? A policy reform evaluated on a published quarter.

A reform is a parameter file in the format of `rules/parameters/` that holds only what changes:

```yaml
name: dibao_plus_5pct
description: the dibao standard of every area 5 % higher from 2026-10-01
reference: 2026年拟调整低保标准 (illustrative)
parameters:
  - name: dibao_standard
    unit: yuan per person per month      # must be the parameter's own unit
    values:
      - from: 2026-10-01
        value: "+5%"                     # relative; or an absolute value as in the file
```

`load_reform` refuses, naming the file and line: an unknown parameter (or one the rules do not
use: the gate's and the lifecycle's), a unit that is not the parameter's (a closing remark in
brackets may be left out), a value without a
`from` date, a relative change that is not `+N%`/`-N%`, an absolute value of the wrong kind or
shape.

`run` compares two evaluations of every rule on a published quarter (the landing folder is not
read again): the baseline, with the parameters in effect on the quarter's end `E` (the published
quarter's own: its saved evaluation, `saved.py`, while it holds; else evaluated again from the
staging tables), and the reform, with every reformed parameter as the reform has it in effect on
`as_of` (`E` unless given) and every other parameter as in the baseline. The reform evaluates
again only the fact models and rules a changed parameter reaches
(`evaluate.evaluate_from_baseline`).
A relative change applies to every key of a keyed parameter (every area's standard); money is
rounded to the fen and whole numbers (ages) to the unit, half up.

The comparison, per rule × county × category: warnings under the baseline, under the reform,
newly flagged (a warning key only the reform raises), no longer flagged. For the rules that imply
a payment (`PAYMENTS`) it also estimates the monthly cost of the change, reform minus baseline,
from each warning's evidence: `NE_DIBAO` the dibao gap, Σ (standard × members − household
income); `NE_TEKUN` Σ (standard − own income), a floor, since the spec sets no tekun support
amount.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import time
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml

from pipelines.core import parameters
from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter
from pipelines.policy import facts, saved
from pipelines.policy.catalogue import RAISED
from pipelines.policy.engine import DEFAULT_MEMORY, DuckDBEngine
from pipelines.policy.evaluate import (
    BASELINE_RAISED,
    CORE,
    Evaluation,
    evaluate_from_baseline,
    evaluate_loaded_sources,
)

RELATIVE = re.compile(r"^([+-])(\d+(?:\.\d+)?)%$")
CHANGE_SCHEMA = {
    "whatif": pl.String,
    "quarter": pl.String,
    "rule_id": pl.String,
    "county_code": pl.String,
    "category": pl.String,
    "baseline_warnings": pl.Int64,
    "reform_warnings": pl.Int64,
    "newly_flagged": pl.Int64,
    "no_longer_flagged": pl.Int64,
    "monthly_cost_change_yuan": pl.Decimal(18, 2),
}


# The rules that imply a monthly payment, and the payment of one warning from its evidence.
# The spec gives the dibao gap (standard × members − household income); it sets no amount for
# tekun support, so that is estimated at the gap to the dibao standard the rule compares the
# person's own income with: a floor. Exact: the evidence's numbers are read as decimals, by
# DuckDB's JSON reader (a million warnings' evidence in about a second).
def _evidence(key: str, kind: str = "decimal(18, 2)") -> str:
    return f"(evidence ->> '{key}')::{kind}"


PAYMENTS = {
    "NE_DIBAO": f"{_evidence('dibao_standard')} * {_evidence('size', 'bigint')} - "
    f"{_evidence('household_income')}",
    "NE_TEKUN": f"{_evidence('dibao_standard')} - {_evidence('monthly_income')}",
}
COST_NOTE = (
    "NE_DIBAO: Σ (dibao_standard × size − household_income); NE_TEKUN: Σ (dibao_standard − "
    "monthly_income), a floor (the spec sets no tekun support amount); per month, over the "
    "warnings each side raises, reform minus baseline, from each warning's evidence"
)


RUN_SCHEMA = {  # one row per comparison (the warehouse's `whatif_runs`)
    "whatif": pl.String,
    "quarter": pl.String,
    "as_of": pl.Date,
    "reform_file": pl.String,
    "reform_sha256": pl.String,
    "reform_description": pl.String,
    "changed": pl.String,
    "baseline_warnings": pl.Int64,
    "reform_warnings": pl.Int64,
    "newly_flagged": pl.Int64,
    "no_longer_flagged": pl.Int64,
    "monthly_cost_change_yuan": pl.Decimal(18, 2),
    "cost_computed_as": pl.String,
}


class ReformError(ValueError):
    """A reform file that cannot be applied, named by file and line."""


@dataclass(frozen=True)
class Change:
    parameter: str
    values: tuple[tuple[dt.date, str | Any], ...]  # (from, "+5%" or an absolute value)


@dataclass(frozen=True)
class Reform:
    name: str
    path: Path
    description: str
    reference: str
    changes: tuple[Change, ...]


class _Lines(yaml.SafeLoader):
    """YAML whose mappings remember the line they start on (`__line__`)."""


def _mapping_with_line(loader: _Lines, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_Lines.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def load_reform(path: Path) -> Reform:
    """Read and check a reform file (the module docstring lists the checks)."""
    path = Path(path)
    where = path.name
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Lines)  # noqa: S506 - SafeLoader
    except (OSError, yaml.YAMLError) as e:
        raise ReformError(f"{where}: cannot be read as YAML ({type(e).__name__})") from None

    def fail(line: int | None, message: str):
        raise ReformError(f"{where}:{line}: {message}" if line else f"{where}: {message}")

    if not isinstance(doc, dict):
        fail(None, "expected a mapping with name, description, reference and parameters")
    known = parameters.parameters()
    changes = []
    entries = doc.get("parameters")
    if not isinstance(entries, list) or not entries:
        fail(doc.get("__line__"), "`parameters` must list the parameters the reform changes")
    for entry in entries:
        line = entry.get("__line__") if isinstance(entry, dict) else None
        if not isinstance(entry, dict):
            fail(None, "each entry of `parameters` is a mapping: name, unit, values")
        name = str(entry.get("name") or "")
        if name not in known:
            near = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            fail(line, f"parameter {name!r} is not one of rules/parameters/{hint}")
        if name in facts.NOT_BOUND:
            fail(line, f"parameter {name} belongs to the gate or the lifecycle, not to the rules")
        base = known[name]
        unit = str(entry.get("unit") or "").strip()
        if _bare(unit) != _bare(base.unit):
            fail(line, f"unit {unit!r} is not {name}'s unit {base.unit!r}")
        values = entry.get("values")
        if not isinstance(values, list) or not values:
            fail(line, f"{name}: `values` must list {{from: <date>, value: ...}}")
        parsed: list[tuple[dt.date, Any]] = []
        for v in values:
            vline = v.get("__line__") if isinstance(v, dict) else line
            if not isinstance(v, dict) or not isinstance(v.get("from"), dt.date):
                fail(vline, f"{name}: a value without a `from` date (YYYY-MM-DD)")
            if parsed and v["from"] <= parsed[-1][0]:
                fail(vline, f"{name}: value from {v['from']} does not come after {parsed[-1][0]}")
            parsed.append((v["from"], _checked_value(v.get("value"), base, vline, fail)))
        changes.append(Change(name, tuple(parsed)))
    return Reform(
        name=str(doc.get("name") or path.stem),
        path=path,
        description=str(doc.get("description") or ""),
        reference=str(doc.get("reference") or ""),
        changes=tuple(changes),
    )


def _bare(unit: str) -> str:
    """A unit without its closing remark in brackets: `years (completed, at the quarter end)`
    is `years`."""
    return re.sub(r"\s*\([^)]*\)$", "", unit.strip())


def _checked_value(raw: Any, base: parameters.Parameter, line: int | None, fail) -> Any:
    if isinstance(raw, str) and RELATIVE.match(raw.strip()):
        return raw.strip()
    if isinstance(raw, str):
        fail(line, f"{base.name}: {raw!r} is neither a number nor a change like +5% or -3%")
    if raw is None:
        fail(line, f"{base.name}: a `from` date without a value")
    value = parameters.exact(raw.copy() if isinstance(raw, dict) else raw)
    if isinstance(value, dict):
        value.pop("__line__", None)
    kind = parameters.unit_kind(base.unit)

    def wrong(message: str):
        fail(line, f"{base.name}: {message}")

    if base.keyed_by is None:
        if isinstance(value, dict):
            wrong("a single number is expected (the parameter is not keyed)")
        parameters.check_number(value, kind, wrong)
    else:
        if not isinstance(value, dict):
            wrong(f"a mapping by {base.keyed_by} is expected, or a change like +5%")
        for v in value.values():
            parameters.check_number(v, "whole" if base.keyed_by == "range" else kind, wrong)
    return value


def _changed(value: Any, change: str | Any, kind: str | None) -> Any:
    """The base `value` under one change (relative, or absolute keys over the base's)."""
    if isinstance(change, str):
        sign, pct = RELATIVE.match(change).groups()  # type: ignore[union-attr]
        factor = Decimal(1) + (Decimal(pct) / 100) * (1 if sign == "+" else -1)
        step = Decimal("0.01") if kind == "amount" else Decimal(1)

        def scaled(v: Decimal) -> Decimal:
            out = v * factor
            return out.quantize(step, ROUND_HALF_UP) if kind in ("amount", "whole") else out

        if isinstance(value, dict):
            return {k: scaled(v) for k, v in value.items()}
        return scaled(value)
    if isinstance(value, dict) and isinstance(change, dict):
        return {**value, **change}
    return change


def reformed(reform: Reform, as_of: dt.date) -> dict[str, parameters.Parameter]:
    """Every parameter as the reform side uses it: a reformed one holds, from the earliest date
    on, the value the reform gives it on `as_of` (unchanged where no value of the reform is in
    effect on `as_of` yet); the others as in `rules/parameters/`."""
    every = dict(parameters.parameters())
    for change in reform.changes:
        in_effect = [c for start, c in change.values if start <= as_of]
        if not in_effect:
            continue
        base = every[change.parameter]
        value = _changed(base.at(as_of), in_effect[-1], parameters.unit_kind(base.unit))
        every[change.parameter] = replace(base, values=((dt.date.min, value),))
    return every


@dataclass
class WhatIf:
    name: str
    quarter: Quarter
    as_of: dt.date
    reform: Reform
    baseline: Evaluation
    reformed: Evaluation
    changes: pl.DataFrame  # CHANGE_SCHEMA
    seconds: dict[str, float] = field(default_factory=dict)
    baseline_from: str = ""  # the quarter's saved evaluation, or why it was evaluated again
    cost_note: str = COST_NOTE


class NotPublished(LookupError):
    """The quarter has not been processed into this output folder."""


def run(
    out: Path,
    quarter: Quarter,
    reform: Reform,
    key: bytes,
    *,
    as_of: dt.date | None = None,
    name: str | None = None,
    memory_limit: str = DEFAULT_MEMORY,
) -> WhatIf:
    """The baseline and the reform on the published quarter, compared (the module docstring)."""
    q = Outputs(out).quarter(quarter)
    if not q.personal_warnings.is_file():
        raise NotPublished(f"{quarter} has not been processed into {out}: run it first")
    sources = facts.Sources.from_out(out, quarter)
    failed = sources.failed(CORE)
    if failed:
        raise NotPublished(f"{quarter} could not be evaluated: {', '.join(failed)} did not pass")
    as_of = as_of or quarter.end
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with DuckDBEngine(Outputs(out).spill("duckdb"), memory_limit) as session:
        session.reset()
        found = saved.open_saved(out, sources, facts.bind_parameters(session, quarter).used, key)
        seconds["load"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        if isinstance(found, saved.Saved):
            found.attach(session)
            baseline, baseline_from = found.baseline, "the quarter's saved evaluation"
        else:  # the facts built again from the staging tables, and the baseline evaluated
            facts.load(session, sources)
            baseline = evaluate_loaded_sources(session, sources, key)
            session.create_table_as(BASELINE_RAISED, f"select * from {RAISED}", {})
            baseline_from = f"evaluated again: {found}"
        seconds["baseline"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        other = evaluate_from_baseline(
            session,
            sources,
            key,
            reformed(reform, as_of),
            baseline,
            saved_models=found.models if isinstance(found, saved.Saved) else None,
        )
        seconds["reform"] = round(time.perf_counter() - started, 3)
    label = name or reform.name
    started = time.perf_counter()
    changes = compare(label, str(quarter), baseline.warnings, other.warnings)
    seconds["compare"] = round(time.perf_counter() - started, 3)
    return WhatIf(label, quarter, as_of, reform, baseline, other, changes, seconds, baseline_from)


def _payments(warnings: pl.DataFrame) -> pl.DataFrame:
    """Per rule that implies a payment and county: the monthly payments of its warnings."""
    rows = warnings.select("rule_id", "county_code", "evidence").filter(
        pl.col("rule_id").is_in(list(PAYMENTS))
    )
    payment = " ".join(f"when '{rule}' then {sql}" for rule, sql in PAYMENTS.items())
    with duckdb.connect(config={"threads": os.cpu_count() or 1}) as con:
        con.register("payable", rows.to_arrow())
        gaps = con.sql(
            f"select rule_id, county_code, sum(case rule_id {payment} end)::decimal(18, 2) "
            "as gap from payable group by rule_id, county_code"
        ).to_arrow_table()
    return pl.from_arrow(gaps).cast(  # type: ignore[return-value]
        {"rule_id": pl.String, "county_code": pl.String, "gap": pl.Decimal(18, 2)}
    )


def compare(name: str, quarter: str, baseline: pl.DataFrame, reform: pl.DataFrame) -> pl.DataFrame:
    """Per rule × county × category: the warnings of each side, the newly flagged and the no
    longer flagged (by warning key), and NE_DIBAO's monthly cost change."""
    cell = ["rule_id", "county_code", "category"]
    b = baseline.select(*cell, "warning_key").with_columns(pl.lit(True).alias("in_baseline"))
    r = reform.select(*cell, "warning_key").with_columns(pl.lit(True).alias("in_reform"))
    both = b.join(r, on=[*cell, "warning_key"], how="full", coalesce=True).with_columns(
        pl.col("in_baseline").fill_null(False), pl.col("in_reform").fill_null(False)
    )
    counts = both.group_by(cell).agg(
        pl.col("in_baseline").sum().cast(pl.Int64).alias("baseline_warnings"),
        pl.col("in_reform").sum().cast(pl.Int64).alias("reform_warnings"),
        (pl.col("in_reform") & ~pl.col("in_baseline")).sum().cast(pl.Int64).alias("newly_flagged"),
        (pl.col("in_baseline") & ~pl.col("in_reform"))
        .sum()
        .cast(pl.Int64)
        .alias("no_longer_flagged"),
    )
    cost = (
        _payments(reform)
        .rename({"gap": "reform_gap"})
        .join(
            _payments(baseline).rename({"gap": "baseline_gap"}),
            on=["rule_id", "county_code"],
            how="full",
            coalesce=True,
        )
        .with_columns(
            (
                pl.col("reform_gap").fill_null(Decimal(0))
                - pl.col("baseline_gap").fill_null(Decimal(0))
            ).alias("monthly_cost_change_yuan")
        )
        .select("rule_id", "county_code", "monthly_cost_change_yuan")
    )
    return (
        counts.join(cost, on=["rule_id", "county_code"], how="left")
        .with_columns(pl.lit(name).alias("whatif"), pl.lit(quarter).alias("quarter"))
        .select(list(CHANGE_SCHEMA))
        .cast(CHANGE_SCHEMA)  # type: ignore[arg-type]
        .sort("rule_id", "county_code", "category")
    )


def write(out: Path, result: WhatIf) -> Path:
    """`<out>/whatif/<name>/changes.parquet` (counts only: no person, no key), `run.json` (the
    reform, its file's SHA-256, the dates, the totals and the time taken) and `run.parquet`
    (the same as one row of the warehouse's `whatif_runs`)."""
    import hashlib

    outputs = Outputs(out)
    folder = outputs.whatif(result.name)
    folder.mkdir(parents=True, exist_ok=True)
    result.changes.write_parquet(outputs.whatif_changes(result.name))
    totals = result.changes.select(
        pl.col("baseline_warnings").sum(),
        pl.col("reform_warnings").sum(),
        pl.col("newly_flagged").sum(),
        pl.col("no_longer_flagged").sum(),
    ).row(0, named=True)
    cost = result.changes["monthly_cost_change_yuan"].drop_nulls().sum()
    record = {
        "whatif": result.name,
        "quarter": str(result.quarter),
        "as_of": result.as_of.isoformat(),
        "reform_file": str(result.reform.path),
        "reform_sha256": hashlib.sha256(result.reform.path.read_bytes()).hexdigest(),
        "reform_description": result.reform.description,
        "changed": {
            c.parameter: [[d.isoformat(), str(v)] for d, v in c.values]
            for c in result.reform.changes
        },
        **{k: int(v) for k, v in totals.items()},
        "monthly_cost_change_yuan": str(cost if cost is not None else Decimal(0)),
        "cost_computed_as": result.cost_note,
        "baseline": result.baseline_from,
        "seconds": result.seconds,
    }
    outputs.whatif_record(result.name).write_text(
        json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    row = {k: v for k, v in record.items() if k in RUN_SCHEMA}
    row["as_of"] = result.as_of
    row["changed"] = json.dumps(record["changed"], ensure_ascii=False, sort_keys=True)
    row["monthly_cost_change_yuan"] = Decimal(record["monthly_cost_change_yuan"])
    pl.DataFrame([row], schema=RUN_SCHEMA).write_parquet(outputs.whatif_runs_table(result.name))
    return folder


def summary_text(result: WhatIf) -> str:
    """What an analyst reads on the terminal: the totals, then the rules that change."""
    c = result.changes
    lines = [
        f"what if: {result.name} on {result.quarter} (reform values in effect on {result.as_of})",
        f"  baseline: {result.baseline_from}",
        f"  warnings: baseline {int(c['baseline_warnings'].sum()):,}, "
        f"reform {int(c['reform_warnings'].sum()):,}; newly flagged "
        f"{int(c['newly_flagged'].sum()):,}, no longer flagged "
        f"{int(c['no_longer_flagged'].sum()):,}",
    ]
    by_rule = (
        c.group_by("rule_id")
        .agg(pl.col("newly_flagged").sum(), pl.col("no_longer_flagged").sum())
        .filter((pl.col("newly_flagged") > 0) | (pl.col("no_longer_flagged") > 0))
        .sort("rule_id")
    )
    for rule, new, gone in by_rule.iter_rows():
        lines.append(f"  {rule:<28} +{new:,} / -{gone:,}")
    cost = c["monthly_cost_change_yuan"].drop_nulls().sum()
    lines.append(
        f"  estimated monthly cost change: {cost or Decimal(0):,.2f} yuan ({result.cost_note})"
    )
    return "\n".join(lines)
