"""The rule catalogue (`rules/catalogue/*.yaml`, policy.md §2) and the one evaluator.

A rule file names its id, Chinese and English names, category, subject, programmes, routing,
seed clause, the extracts it reads, whether it reads the twelve-month window, the parameters it
uses, the rules whose warnings it reads (`after`, for the suppressions of §2) and the SQL that
decides it. The SQL selects one row per warning with `subject_id`, `household_id`,
`household_source`, `county_code`, `display_id` (the person the warning is shown under),
`evidence` (JSON) and `reason_zh`; the evaluator adds everything the catalogue knows.

A rule is `NOT_EVALUATED` when an extract it reads (besides the registry and the roster, which
every rule reads) failed or is missing for the quarter, or a parameter it uses has no value in
effect on `E` (policy.md §3–4): it raises nothing and says why in `rule_runs`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from pipelines import RULES_DIR, facts, pseudonym
from pipelines.quality import CORE_EXTRACTS

CATEGORIES = (
    "POLICY_NOT_IMPLEMENTED",
    "NEWLY_ELIGIBLE",
    "NO_LONGER_ELIGIBLE",
    "HARDSHIP_WITHOUT_POLICY",
)
SUBJECTS = ("PERSON", "HOUSEHOLD")
ROUTES = ("mca", "moe", "nhsa", "mohurd", "hrss", "cdpf", "mem", "county_coordination")
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


class CatalogueError(ValueError):
    """A rule file is malformed."""


@dataclass(frozen=True)
class Rule:
    rule_id: str
    version: int
    name_zh: str
    name_en: str
    category: str
    subject: str
    programmes: tuple[str, ...]
    routed_to: str
    policy_clause: str
    reads: tuple[str, ...]
    window: bool
    parameters: tuple[str, ...]
    after: tuple[str, ...]
    sql: str
    digest: str

    @property
    def rule_version(self) -> str:
        """The version the province gave the rule, and a digest of its file: any edit shows."""
        return f"{self.version}+{self.digest}"


def _load(path: Path) -> Rule:
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    where = path.name
    try:
        rule = Rule(
            rule_id=doc["rule_id"],
            version=int(doc["version"]),
            name_zh=doc["name_zh"],
            name_en=doc["name_en"],
            category=doc["category"],
            subject=doc["subject"],
            programmes=tuple(doc.get("programmes") or ()),
            routed_to=doc["routed_to"],
            policy_clause=doc["policy_clause"],
            reads=tuple(doc.get("reads") or ()),
            window=bool(doc["window"]),
            parameters=tuple(doc.get("parameters") or ()),
            after=tuple(doc.get("after") or ()),
            sql=doc["sql"],
            digest=hashlib.sha256(text.encode("utf-8")).hexdigest()[:8],
        )
    except KeyError as e:
        raise CatalogueError(f"{where}: missing field {e}") from None
    if path.stem != rule.rule_id:
        raise CatalogueError(f"{where}: file name must be the rule id {rule.rule_id}")
    for value, allowed, what in (
        (rule.category, CATEGORIES, "category"),
        (rule.subject, SUBJECTS, "subject"),
        (rule.routed_to, ROUTES, "routed_to"),
    ):
        if value not in allowed:
            raise CatalogueError(f"{where}: {what} {value!r} is not one of {allowed}")
    return rule


@functools.cache
def catalogue(directory: Path = RULES_DIR / "catalogue") -> tuple[Rule, ...]:
    """Every rule, in an order where each comes after the rules it reads (`after`)."""
    rules = {r.rule_id: r for r in map(_load, sorted(directory.glob("*.yaml")))}
    ordered: list[Rule] = []
    done: set[str] = set()

    def visit(rule: Rule, path: tuple[str, ...]) -> None:
        if rule.rule_id in done:
            return
        if rule.rule_id in path:
            raise CatalogueError(f"rules read each other in a circle: {' → '.join(path)}")
        for name in rule.after:
            if name not in rules:
                raise CatalogueError(f"{rule.rule_id}: `after` names unknown rule {name}")
            visit(rules[name], (*path, rule.rule_id))
        done.add(rule.rule_id)
        ordered.append(rule)

    for rule in sorted(rules.values(), key=lambda r: (CATEGORIES.index(r.category), r.rule_id)):
        visit(rule, ())
    known = {p for p in _known_parameters()}
    for rule in ordered:
        unknown = set(rule.parameters) - known
        if unknown:
            raise CatalogueError(f"{rule.rule_id}: unknown parameters {sorted(unknown)}")
    return tuple(ordered)


def _known_parameters() -> set[str]:
    from pipelines import parameters

    return set(parameters.parameters())


@dataclass
class Evaluation:
    quarter: str
    processed: bool  # False when the registry or the roster failed: nothing could be evaluated
    warnings: pl.DataFrame  # WARNING_SCHEMA, personal
    rule_runs: pl.DataFrame
    data_findings: pl.DataFrame
    seconds: dict[str, float]


def evaluate(
    sources: facts.Sources,
    key: bytes,
    *,
    temp_directory: Path | None = None,
    memory_limit: str | None = None,
) -> Evaluation:
    """Facts, then every rule in catalogue order, for one quarter."""
    quarter = str(sources.quarter)
    seconds: dict[str, float] = {}
    con = facts.connect(
        temp_directory,
        memory_limit or os.environ.get("SAFETYNET_DUCKDB_MEMORY", facts.DEFAULT_MEMORY),
    )
    try:
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
        facts.load(con, sources)
        seconds["load"] = round(time.perf_counter() - started, 3)
        bound = facts.bind_parameters(con, sources.quarter)
        seconds.update(facts.build(con, bound))
        con.execute(
            "create table raised (rule_id VARCHAR, category VARCHAR, subject_type VARCHAR, "
            "subject_id VARCHAR, household_id VARCHAR, household_source VARCHAR, "
            "county_code VARCHAR, display_id VARCHAR, evidence JSON, reason_zh VARCHAR)"
        )
        for rule in catalogue():
            started = time.perf_counter()
            runs.append(_evaluate_rule(con, sources, bound, rule))
            seconds[rule.rule_id] = round(time.perf_counter() - started, 3)
        warnings = _warnings(con, key, quarter)
        findings = pl.from_arrow(
            con.sql(
                "select quarter, county_code, finding, count from fct_data_findings"
            ).to_arrow_table()
        )
        return Evaluation(
            quarter,
            True,
            warnings,
            pl.DataFrame(runs, schema=RULE_RUN_SCHEMA),
            findings.cast(FINDING_SCHEMA),  # type: ignore[arg-type]
            seconds,
        )
    finally:
        con.close()


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


def _evaluate_rule(con, sources: facts.Sources, bound: facts.Bound, rule: Rule) -> dict[str, Any]:
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
    evidence = (
        "json_merge_patch(json_object('window_quarters', $window_quarters), evidence)"
        if rule.window
        else "evidence::json"
    )
    facts.run_sql(
        con,
        f"""insert into raised
        select $rule_id, $category, $subject_type, subject_id, household_id, household_source,
            county_code, display_id, {evidence}, reason_zh
        from (\n{rule.sql}\n)""",
        {
            **values,
            "rule_id": rule.rule_id,
            "category": rule.category,
            "subject_type": rule.subject,
        },
    )
    raised = con.execute(
        "select count(*) from raised where rule_id = $r", {"r": rule.rule_id}
    ).fetchall()[0][0]
    return _run_row(quarter, rule, "EVALUATED", None, raised, used, window_quarters)


def _warnings(con, key: bytes, quarter: str) -> pl.DataFrame:
    rules = {r.rule_id: r for r in catalogue()}
    frame = con.sql(
        """select raised.rule_id, raised.subject_type, raised.subject_id, raised.household_id,
            raised.household_source, raised.county_code, raised.display_id as id_number,
            persons.name, raised.evidence::varchar as evidence, raised.reason_zh
        from raised
        left join fct_persons as persons on persons.id_number = raised.display_id"""
    ).to_arrow_table()
    frame = pl.from_arrow(frame)
    if frame.is_empty():
        return pl.DataFrame(schema=WARNING_SCHEMA)
    keys = [
        pseudonym.warning_key(key, r, t, s, subject)
        for r, t, s, subject in frame.select(
            "rule_id", "subject_type", "household_source", "subject_id"
        ).iter_rows()
    ]
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
            pl.Series("warning_key", keys, pl.String),
            pl.lit(quarter).alias("quarter"),
        )
        .join(meta, on="rule_id", how="left")
        .select(list(WARNING_SCHEMA))
        .cast(WARNING_SCHEMA)  # type: ignore[arg-type]
        .sort("rule_id", "warning_key")
    )


def analyst_warnings(warnings: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """The warnings as analysts may see them (outputs.md §2): no identity number and no name;
    a pseudonymous `person_key` and the masked number instead."""
    from pipelines.idnumbers import mask_expr

    keys = [pseudonym.person_key(key, v) for v in warnings["id_number"].to_list()]
    return warnings.with_columns(
        pl.Series("person_key", keys, pl.String),
        mask_expr(pl.col("id_number")).alias("id_masked"),
    ).drop("id_number", "name")


def write(out: Path, evaluation: Evaluation) -> dict[str, Path]:
    """`<q>/policy/warnings.parquet` (the raised warnings, personal: the publishing stage
    applies the lifecycle and writes the routed files and the analyst `warnings` from it) and
    `<q>/tables/{rule_runs,data_findings}.parquet`, each written aside and moved into place."""
    q = evaluation.quarter
    frames = {
        Path(out) / q / "policy" / "warnings.parquet": evaluation.warnings,
        Path(out) / q / "tables" / "rule_runs.parquet": evaluation.rule_runs,
        Path(out) / q / "tables" / "data_findings.parquet": evaluation.data_findings,
    }
    for path, frame in frames.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        frame.write_parquet(tmp)
        os.replace(tmp, path)
    return {p.stem: p for p in frames}


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
    """The analyst tables of a processed quarter (warnings, rule_runs, data_findings)."""
    folder = Path(out) / quarter / "tables"
    names = ("warnings", "rule_runs", "data_findings")
    if not all((folder / f"{n}.parquet").is_file() for n in names):
        return None
    w, runs, findings = (pl.read_parquet(folder / f"{n}.parquet") for n in names)
    return w, runs, findings
