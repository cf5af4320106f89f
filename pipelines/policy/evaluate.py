"""The one evaluator: facts, then every rule of the catalogue in order, for one quarter.

A rule is `NOT_EVALUATED` when an extract it reads (besides the registry and the roster, which
every rule reads) failed or is missing for the quarter, or a parameter it uses has no value in
effect on `E` (policy.md §3–4): it raises nothing and says why in `rule_runs`. Without the
registry or the roster no rule is evaluated, and the quarter could not be processed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.core import pseudonym
from pipelines.core.departments import CORE_EXTRACTS
from pipelines.core.faults import crash_point
from pipelines.core.layout import Outputs, aside
from pipelines.core.parameters import Parameter
from pipelines.policy import facts
from pipelines.policy.catalogue import (
    CATEGORIES,
    RAISED,
    RAISED_COLUMNS,
    Rule,
    catalogue,
    reads_an_extract,
    sql_reads,
)
from pipelines.policy.engine import DEFAULT_MEMORY, DuckDBEngine, Engine
from pipelines.policy.lineage import Reach

CORE = [f"{d}/{e}" for d, e in CORE_EXTRACTS]
# one row per warning of the quarter, with the person it is shown under (outputs.md §1 columns
# this stage knows); this frame holds identity numbers and names and stays in <q>/policy/
WARNING_SCHEMA = {
    "warning_key": pl.String,
    "quarter": pl.String,
    "rule_id": pl.String,
    "rule_name_zh": pl.String,
    "category": pl.String,
    "subject_type": pl.String,
    "id_number": pl.String,
    "name": pl.String,
    "household_id": pl.String,
    "household_source": pl.String,
    "county_code": pl.String,
    "reason_zh": pl.String,
    "evidence": pl.String,
    "policy_clause": pl.String,
    "routed_to": pl.String,
}
RULE_RUN_SCHEMA = {
    "quarter": pl.String,
    "rule_id": pl.String,
    "status": pl.String,
    "reason": pl.String,
    "warnings_raised": pl.Int64,
    "parameters": pl.String,
    "rule_version": pl.String,
    "window_quarters": pl.Int64,
}
FINDING_SCHEMA = {
    "quarter": pl.String,
    "county_code": pl.String,
    "finding": pl.String,
    "count": pl.Int64,
}


# the baseline's raised warnings, in a session that evaluates a reform (`evaluate_from_baseline`)
BASELINE_RAISED = "baseline_raised"


# the raised warnings with the names of the persons they are about, and the data findings
WARNINGS_SQL = """select raised.rule_id, raised.subject_type, raised.subject_id,
    raised.household_id, raised.household_source, raised.county_code,
    raised.display_id as id_number, persons.name, raised.evidence::varchar as evidence,
    raised.reason_zh
from raised
left join fct_persons as persons on persons.id_number = raised.display_id"""
FINDINGS_SQL = "select quarter, county_code, finding, count from fct_data_findings"


@dataclass
class Evaluation:
    quarter: str
    processed: bool  # False when the registry or the roster failed: nothing could be evaluated
    warnings: pl.DataFrame  # WARNING_SCHEMA, personal
    rule_runs: pl.DataFrame
    data_findings: pl.DataFrame
    seconds: dict[str, float]
    # the parameters in effect on E as evaluated (`facts.Bound.used`), by name
    parameters: dict[str, Any] = field(default_factory=dict)


def evaluate_sources(
    sources: facts.Sources,
    key: bytes,
    *,
    engine: Engine | None = None,
    temp_directory: Path | None = None,
    memory_limit: str = DEFAULT_MEMORY,
) -> Evaluation:
    """One quarter's sources loaded, the facts built, then every rule in catalogue order.
    `engine`: a session to evaluate in (it is reset first and left open); without one, a DuckDB
    session is opened with `temp_directory` and `memory_limit`, and closed after."""
    own = engine is None
    session = DuckDBEngine(temp_directory, memory_limit) if engine is None else engine
    try:
        session.reset()
        return _load_and_evaluate(session, sources, key)
    finally:
        if own:
            session.close()


def _load_and_evaluate(engine: Engine, sources: facts.Sources, key: bytes) -> Evaluation:
    """The sources loaded into `engine`, then `evaluate_loaded_sources`; without the registry
    or the roster nothing is loaded and every rule is NOT_EVALUATED."""
    quarter = str(sources.quarter)
    seconds: dict[str, float] = {}
    core_failed = sources.failed(CORE)
    runs: list[dict[str, Any]] = []
    if core_failed:
        reason = "every rule reads " + ", ".join(core_failed)
        for rule in catalogue():
            runs.append(_run_row(quarter, rule, "NOT_EVALUATED", reason, 0, {}, None))
        return Evaluation(
            quarter,
            False,
            pl.DataFrame(schema=WARNING_SCHEMA),
            pl.DataFrame(runs, schema=RULE_RUN_SCHEMA),
            pl.DataFrame(schema=FINDING_SCHEMA),
            seconds,
        )
    started = time.perf_counter()
    facts.load(engine, sources)
    seconds["load"] = round(time.perf_counter() - started, 3)
    return evaluate_loaded_sources(engine, sources, key, seconds=seconds)


def evaluate_loaded_sources(
    engine: Engine,
    sources: facts.Sources,
    key: bytes,
    every: Mapping[str, Parameter] | None = None,
    *,
    seconds: dict[str, float] | None = None,
) -> Evaluation:
    """The facts and every rule over staging tables `facts.load` put in `engine` already, with
    the parameters `every` (the files' unless given: a reform's, `whatif.py`). The core extracts
    passed (`evaluate_sources` checks)."""
    quarter = str(sources.quarter)
    seconds = {} if seconds is None else seconds
    runs: list[dict[str, Any]] = []
    bound = facts.bind_parameters(engine, sources.quarter, every)
    seconds.update(facts.build(engine, bound))
    engine.create_table(RAISED, RAISED_COLUMNS)
    for rule in catalogue():
        started = time.perf_counter()
        runs.append(_evaluate_rule(engine, sources, bound, rule))
        seconds[rule.rule_id] = round(time.perf_counter() - started, 3)
    warnings = _warnings(engine, key, quarter)
    findings = pl.from_arrow(engine.arrow(FINDINGS_SQL))
    return Evaluation(
        quarter,
        True,
        warnings,
        pl.DataFrame(runs, schema=RULE_RUN_SCHEMA),
        findings.cast(FINDING_SCHEMA),  # type: ignore[arg-type]
        seconds,
        bound.used,
    )


def evaluate_from_baseline(
    engine: Engine,
    sources: facts.Sources,
    key: bytes,
    every: Mapping[str, Parameter],
    baseline: Evaluation,
    *,
    saved_models: Collection[str] | None = None,
) -> Evaluation:
    """What `evaluate_loaded_sources(engine, sources, key, every)` returns, starting from the
    baseline and evaluating again only what a changed parameter reaches. The session holds the
    staging tables, the baseline's fact models (`facts.MODELS`, tables or views) and its raised
    warnings (`BASELINE_RAISED`); `baseline` is that evaluation. A parameter has changed when its
    value in effect on `E` differs from the baseline's. What a changed parameter reaches is followed
    column by column through the SQL (`lineage.Reach`): the fact models it reaches are built again,
    in order; a rule is evaluated again when it reaches the rule's result, when the rule declares a
    changed parameter, or when the rule reads `raised` and a rule before it was evaluated again.
    Every other rule's run and warnings are the baseline's (tests/test_whatif.py checks the two ways
    give the same evaluation).

    `saved_models`: the session holds only these fact models (a quarter's saved evaluation,
    `saved.py`) and no staging table. Any other model the evaluation reads is then built too,
    with `every` (which does not reach it, so its rows are the baseline's), and the staging
    tables are loaded only if something built or evaluated again reads an extract."""
    quarter = str(sources.quarter)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    bound = facts.bind_parameters(engine, sources.quarter, every)
    changed = {
        name
        for name in bound.used.keys() | baseline.parameters.keys()
        if _comparable(bound.used.get(name)) != _comparable(baseline.parameters.get(name))
    }
    engine.define_macros(facts.model_sql("macros"))
    # a keyed parameter that gains or loses a key (or its value) adds or removes rows of the
    # parameter table that holds it
    reshaped = {
        name
        for name in changed
        if _keys(bound.used.get(name)) != _keys(baseline.parameters.get(name))
    }
    reach = Reach(changed, reshaped)
    reached = {name for name in facts.MODELS if reach.model(name).anything}
    # a rule that reads `raised` is evaluated again when any rule before it is (not only those
    # `after` names: it may select by category), and sees every rule's warnings before it
    reads_raised = {r.rule_id for r in catalogue() if RAISED in sql_reads(r.sql, r.rule_id).tables}
    again: set[str] = set()
    for rule in catalogue():
        if (
            reach.sql(rule.rule_id, rule.sql).anything
            or set(rule.parameters) & changed
            or (rule.rule_id in reads_raised and again)
        ):
            again.add(rule.rule_id)
    built = [name for name in facts.MODELS if name in reached]
    if saved_models is not None:
        texts = [r.sql for r in catalogue() if r.rule_id in again]
        texts += [WARNINGS_SQL] if again else []
        texts += [FINDINGS_SQL] if "fct_data_findings" in reached else []
        needed = {t for text in texts for t in sql_reads(text, "sql").tables}
        for name in reversed(facts.MODELS):  # a model reads only models before it
            if name in reached or (name in needed and name not in saved_models):
                needed |= sql_reads(facts.model_sql(name), name).tables
        built = [m for m in facts.MODELS if m in reached or (m in needed - set(saved_models))]
        texts += [facts.model_sql(m) for m in built]
        if any(reads_an_extract(text) for text in texts):
            loading = time.perf_counter()
            facts.load(engine, sources)  # only when something evaluated reads an extract
            seconds["load"] = round(time.perf_counter() - loading, 3)
    seconds["what_changed"] = round(time.perf_counter() - started - seconds.get("load", 0), 3)
    for name in built:
        started = time.perf_counter()
        engine.create_table_as(name, facts.model_sql(name), bound.sql)
        seconds[name] = round(time.perf_counter() - started, 3)
    copy_raised = bool(again & reads_raised)
    baseline_runs = {r["rule_id"]: r for r in baseline.rule_runs.iter_rows(named=True)}
    engine.create_table(RAISED, RAISED_COLUMNS)
    runs: list[dict[str, Any]] = []
    for rule in catalogue():
        started = time.perf_counter()
        if rule.rule_id in again:
            runs.append(_evaluate_rule(engine, sources, bound, rule))
            seconds[rule.rule_id] = round(time.perf_counter() - started, 3)
            continue
        runs.append(baseline_runs[rule.rule_id])
        if copy_raised:  # a rule evaluated again after it reads the warnings raised so far
            engine.insert_select(
                RAISED,
                f"select * from {BASELINE_RAISED} where rule_id = $rule_id",
                {"rule_id": rule.rule_id},
            )
    started = time.perf_counter()
    fresh = _warnings(engine, key, quarter, sorted(again)) if again else baseline.warnings.clear()
    seconds["warnings"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    # both sorted by rule and key, with no rule in common: each rule's rows from its side, in
    # rule order, are the sorted whole (without sorting a million evidence texts again)
    by_rule = {
        rule: rows
        for side, keep in ((baseline.warnings, False), (fresh, True))
        for rule, rows in _rule_slices(side)
        if (rule in again) == keep
    }
    parts = [by_rule[rule] for rule in sorted(by_rule)]
    warnings = pl.concat(parts) if parts else baseline.warnings.clear()
    seconds["merge"] = round(time.perf_counter() - started, 3)
    findings = (
        pl.from_arrow(engine.arrow(FINDINGS_SQL)).cast(FINDING_SCHEMA)  # type: ignore[arg-type]
        if reach.model("fct_data_findings").anything
        else baseline.data_findings
    )
    return Evaluation(
        quarter,
        True,
        warnings,
        pl.DataFrame(runs, schema=RULE_RUN_SCHEMA),
        findings,
        seconds,
        bound.used,
    )


def _rule_slices(warnings: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """Each rule's rows of warnings sorted by rule and key, as slices of the frame (no copy)."""
    runs = warnings.select(pl.col("rule_id").rle()).unnest("rule_id")
    if runs.height != runs["value"].n_unique():  # not sorted after all: sorted here
        return _rule_slices(warnings.sort("rule_id", "warning_key"))
    out, offset = [], 0
    for length, rule in runs.select("len", "value").iter_rows():
        out.append((rule, warnings.slice(offset, length)))
        offset += length
    return out


def _keys(value: Any) -> frozenset[str] | None:
    """A parameter value's keys (a keyed one's), or None for a missing or unkeyed value."""
    return frozenset(value) if isinstance(value, dict) and value else None


def _comparable(value: Any) -> str:
    """A parameter's value as JSON: the same text whether it was bound now or read back from a
    saved evaluation's record."""
    return json.dumps(value, sort_keys=True, default=str)


def _run_row(
    quarter: str,
    rule: Rule,
    status: str,
    reason: str | None,
    raised: int,
    used: dict[str, Any],
    window_quarters: int | None,
) -> dict[str, Any]:
    return {
        "quarter": quarter,
        "rule_id": rule.rule_id,
        "status": status,
        "reason": reason,
        "warnings_raised": raised,
        "parameters": json.dumps(used, ensure_ascii=False, sort_keys=True),
        "rule_version": rule.rule_version,
        "window_quarters": window_quarters,
    }


def raise_sql(rule: Rule) -> str:
    """The statement that raises a rule's warnings into `raised`: its SQL, with the window a
    window rule looked at put into its evidence."""
    evidence = (
        "json_merge_patch(json_object('window_quarters', $window_quarters), evidence)"
        if rule.window
        else "evidence::json"
    )
    return f"""select $rule_id, $category, $subject_type, subject_id, household_id,
        household_source, county_code, display_id, {evidence}, reason_zh
    from (\n{rule.sql}\n)"""


def _evaluate_rule(
    engine: Engine, sources: facts.Sources, bound: facts.Bound, rule: Rule
) -> dict[str, Any]:
    quarter = str(sources.quarter)
    used = {p: bound.used.get(p) for p in rule.parameters}
    failed = sources.failed(list(rule.reads))
    if failed:
        return _run_row(quarter, rule, "NOT_EVALUATED", "needs " + ", ".join(failed), 0, used, None)
    missing = [bound.missing[p] for p in rule.parameters if p in bound.missing]
    if missing:
        return _run_row(quarter, rule, "NOT_EVALUATED", "; ".join(missing), 0, used, None)
    window_quarters = (
        sources.window_quarters(facts.event_extracts(list(rule.reads))) if rule.window else None
    )
    values = {**bound.sql, "programmes": list(rule.programmes), "window_quarters": window_quarters}
    raised = engine.insert_select(
        RAISED,
        raise_sql(rule),
        {
            **values,
            "rule_id": rule.rule_id,
            "category": rule.category,
            "subject_type": rule.subject,
        },
    )
    return _run_row(quarter, rule, "EVALUATED", None, raised, used, window_quarters)


def _warnings(
    engine: Engine, key: bytes, quarter: str, rule_ids: list[str] | None = None
) -> pl.DataFrame:
    """The raised warnings (of `rule_ids` only, where given) with their keys and the
    catalogue's names for them, sorted by rule and key."""
    rules = {r.rule_id: r for r in catalogue()}
    if rule_ids is None:
        frame = pl.from_arrow(engine.arrow(WARNINGS_SQL))
    else:
        frame = pl.from_arrow(
            engine.arrow(
                WARNINGS_SQL + "\nwhere list_contains($rule_ids::varchar[], raised.rule_id)",
                {"rule_ids": rule_ids},
            )
        )
    if frame.is_empty():
        return pl.DataFrame(schema=WARNING_SCHEMA)
    keys = pseudonym.warning_keys(key, frame)
    meta = pl.DataFrame(
        [
            {
                "rule_id": r.rule_id,
                "rule_name_zh": r.name_zh,
                "category": r.category,
                "policy_clause": r.policy_clause,
                "routed_to": r.routed_to,
            }
            for r in rules.values()
        ]
    )
    return (
        frame.with_columns(
            keys,
            pl.lit(quarter).alias("quarter"),
        )
        .join(meta, on="rule_id", how="left")
        .select(list(WARNING_SCHEMA))
        .cast(WARNING_SCHEMA)  # type: ignore[arg-type]
        .sort("rule_id", "warning_key")
    )


def write(out: Path, evaluation: Evaluation) -> dict[str, Path]:
    """`<q>/policy/warnings.parquet` (the raised warnings, personal: the publishing stage
    applies the lifecycle and writes the routed files and the analyst `warnings` from it) and
    `<q>/tables/{rule_runs,data_findings}.parquet`, each written aside and moved into place."""
    q = Outputs(out).quarter(evaluation.quarter)
    frames = {
        "warnings": (q.personal_warnings, evaluation.warnings),
        "rule_runs": (q.table("rule_runs"), evaluation.rule_runs),
        "data_findings": (q.table("data_findings"), evaluation.data_findings),
    }
    for path, frame in frames.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = aside(path)
        frame.write_parquet(tmp)
        os.replace(tmp, path)
        crash_point("policy")
    return {name: path for name, (path, _) in frames.items()}


def summary_text(w: pl.DataFrame, runs: pl.DataFrame, findings: pl.DataFrame) -> str:
    """Warnings by category, rule and receiving department, and the rules not evaluated."""
    lines = []
    lines.append(f"warnings: {w.height:,}")
    for category in CATEGORIES:
        n = w.filter(pl.col("category") == category).height
        lines.append(f"  {category:<25} {n:>8,}")
    lines.append("by rule:")
    for rule_id, status, raised, reason in runs.select(
        "rule_id", "status", "warnings_raised", "reason"
    ).iter_rows():
        shown = f"{raised:>8,}" if status == "EVALUATED" else f"{'—':>8}  NOT_EVALUATED: {reason}"
        lines.append(f"  {rule_id:<30}{shown}")
    by_route = w.group_by("routed_to").len().sort("routed_to")
    lines.append(
        "by department: " + (", ".join(f"{r} {n:,}" for r, n in by_route.iter_rows()) or "none")
    )
    if findings.height:
        totals = findings.group_by("finding").agg(pl.col("count").sum()).sort("finding")
        lines.append("data findings: " + ", ".join(f"{f} {n:,}" for f, n in totals.iter_rows()))
    return "\n".join(lines)


def read_tables(out: Path, quarter: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame] | None:
    """The analyst tables of a published quarter (warnings, rule_runs, data_findings)."""
    q = Outputs(out).quarter(quarter)
    paths = [q.table(n) for n in ("warnings", "rule_runs", "data_findings")]
    if not all(p.is_file() for p in paths):
        return None
    w, runs, findings = (pl.read_parquet(p) for p in paths)
    return w, runs, findings
