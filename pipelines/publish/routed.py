"""Publishing a quarter (outputs.md §1, §3; domain.md lifecycle): the lifecycle applied to the
quarter's raised warnings and the departments' feedback, the routed CSV files, the analyst tables,
and the routing record the next quarter's feedback is checked against — all written aside and
moved into place at once (`atomic.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.core import parameters, pseudonym
from pipelines.core.departments import COORDINATION, ROUTES
from pipelines.core.idnumbers import mask_expr
from pipelines.core.layout import Outputs, QuarterOutputs
from pipelines.core.quarters import Quarter
from pipelines.policy.engine import Engine
from pipelines.policy.evaluate import RULE_RUN_SCHEMA, WARNING_SCHEMA
from pipelines.publish import atomic, lifecycle

ROUTED_COLUMNS = (
    "warning_key",
    "quarter",
    "status",
    "quarters_open",
    "rule_id",
    "rule_name_zh",
    "category",
    "subject_type",
    "id_number",
    "name",
    "household_id",
    "household_source",
    "county_code",
    "reason_zh",
    "evidence",
    "policy_clause",
    "routed_to",
)
# the first characters that make Excel or LibreOffice read a cell as a formula, or a command
# (OWASP, "CSV Injection"): a name or household number from a department's data must stay text
FORMULA_START = r"^[=+\-@\t\r]"
ROUTING_SCHEMA = {
    "quarter": pl.String,
    "warning_key": pl.String,
    "routed_to": pl.String,
    "county_code": pl.String,
    "escalation_copy": pl.Boolean,
}


def previous_lifecycle(out: Path, quarter: Quarter) -> pl.DataFrame | None:
    """The lifecycle rows of the latest processed quarter before this one."""
    outputs = Outputs(out)
    for q in reversed(outputs.quarters()):
        path = outputs.quarter(q).table("warning_lifecycle")
        if Quarter.parse(q) < quarter and path.is_file():
            return pl.read_parquet(path)
    return None


def accepted_feedback(out: Path, quarter: Quarter) -> pl.DataFrame:
    """The feedback rows the gate accepted this quarter, from every department's folder (the
    free-text `note` stays in staging: it may name people)."""
    frames = []
    staged = Outputs(out).quarter(quarter)
    for dept in ROUTES:  # a feedback folder is named for a receiving department (extracts.md §4)
        path = staged.staging(dept, "feedback")
        if path.is_file():
            frames.append(
                pl.read_parquet(path).select(
                    pl.lit(str(quarter)).alias("quarter"),
                    pl.lit(dept).alias("department"),
                    "warning_key",
                    "action",
                    "action_date",
                )
            )
    if not frames:
        return pl.DataFrame(schema=lifecycle.FEEDBACK_SCHEMA)
    return (
        pl.concat(frames)
        .cast(lifecycle.FEEDBACK_SCHEMA)
        .sort(  # type: ignore[arg-type]
            "department", "warning_key", "action_date"
        )
    )


def analyst_warnings(warnings: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """The warnings as analysts may see them (outputs.md §2): no identity number and no name;
    a pseudonymous `person_key` and the masked number instead."""
    return warnings.with_columns(
        pseudonym.person_keys(key, warnings["id_number"]),
        mask_expr(pl.col("id_number")).alias("id_masked"),
    ).drop("id_number", "name")


@dataclass
class Routed:
    """A quarter's lifecycle applied and its routed files and analyst tables written."""

    quarter: str
    warnings: pl.DataFrame  # personal, with status and quarters_open
    lifecycle: pl.DataFrame
    routed_files: list[Path]
    feedback_rows: int


def publish(out: Path, quarter: Quarter, key: bytes, *, engine: Engine | None = None) -> Routed:
    """Apply the lifecycle (compared in `engine`, the policy stage's kind of session; DuckDB's
    own without one) and publish the quarter's routed files and analyst tables."""
    q = Outputs(out).quarter(quarter)
    atomic.recover(q)
    raised = (
        pl.read_parquet(q.personal_warnings)
        if q.personal_warnings.is_file()
        else pl.DataFrame(schema=WARNING_SCHEMA)
    )
    runs = (
        pl.read_parquet(q.table("rule_runs"))
        if q.table("rule_runs").is_file()
        else pl.DataFrame(schema=RULE_RUN_SCHEMA)
    )
    evaluated = set(runs.filter(pl.col("status") == "EVALUATED")["rule_id"])
    feedback = accepted_feedback(out, quarter)
    cycle = lifecycle.advance(
        quarter,
        raised,
        evaluated,
        feedback,
        previous_lifecycle(out, quarter),
        escalate_after=int(parameters.value("escalate_after_quarters", quarter.end)),
        dismissal_quarters=int(parameters.value("dismissal_quarters", quarter.end)),
        engine=engine,
    )
    warnings = (
        raised.join(
            cycle.filter(pl.col("status").is_in(lifecycle.RAISED)).select(
                "warning_key", "status", "quarters_open"
            ),
            on="warning_key",
            how="inner",
        )
        .select(ROUTED_COLUMNS)
        .sort("rule_id", "warning_key")
    )
    routed = _routed_rows(warnings)
    aside = atomic.start(q)
    files = _write_routed(aside, routed)
    tables = {
        aside.table("warnings"): analyst_warnings(warnings, key),
        aside.table("warning_lifecycle"): cycle,
        aside.table("feedback"): feedback,
        aside.routing: routed.select(
            pl.lit(str(quarter)).alias("quarter"),
            "warning_key",
            pl.col("file_department").alias("routed_to"),
            "county_code",
            "escalation_copy",
        ).cast(ROUTING_SCHEMA),  # type: ignore[arg-type]
    }
    for path, frame in tables.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path)
    atomic.move_into_place(aside, q, [str(p.relative_to(aside.root)) for p in tables])
    return Routed(
        str(quarter),
        warnings,
        cycle,
        [q.root / f.relative_to(aside.root) for f in files],
        feedback.height,
    )


def _routed_rows(warnings: pl.DataFrame) -> pl.DataFrame:
    """The rows of the routed files: each warning to its department, and an ESCALATED one also
    to the county coordination mechanism (HWP warnings are there already). The copy keeps the
    `routed_to` of the department that owns the case."""
    own = warnings.with_columns(
        pl.col("routed_to").alias("file_department"), pl.lit(False).alias("escalation_copy")
    )
    copies = warnings.filter(
        (pl.col("status") == "ESCALATED") & (pl.col("routed_to") != COORDINATION)
    ).with_columns(
        pl.lit(COORDINATION).alias("file_department"), pl.lit(True).alias("escalation_copy")
    )
    return pl.concat([own, copies])


def as_text_in_excel(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell that would start a formula gets a leading apostrophe, OWASP's remedy:
    the spreadsheet shows it as the text it is (apostrophe included), and nothing runs. Other
    cells are unchanged; our own columns never start so (identity numbers, codes and keys are
    checked or made by us, the evidence is a JSON object)."""
    text = [n for n, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(
        pl.when(pl.col(n).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(n))
        .otherwise(pl.col(n))
        .alias(n)
        for n in text
    )


def _write_routed(aside: QuarterOutputs, routed: pl.DataFrame) -> list[Path]:
    """`routed/<dept>/<county>.csv`, UTF-8 with BOM, sorted by rule then key (outputs.md §1),
    text that Excel would run as a formula neutralised (`as_text_in_excel`)."""
    aside.routed.mkdir(parents=True, exist_ok=True)
    written = []
    for (dept, county), rows in sorted(
        routed.partition_by(["file_department", "county_code"], as_dict=True).items()
    ):
        path = aside.routed_file(str(dept), str(county))
        path.parent.mkdir(parents=True, exist_ok=True)
        as_text_in_excel(rows.select(ROUTED_COLUMNS).sort("rule_id", "warning_key")).write_csv(
            path, include_bom=True
        )
        written.append(path)
    return written
