"""Publishing a quarter (outputs.md §1, §3; domain.md lifecycle): the lifecycle applied to the
quarter's raised warnings and the departments' feedback, the routed CSV files, the analyst tables,
and the routing history the next quarter's feedback is checked against.

Everything is written aside under `<out>/<q>/.publish-<pid>/` and moved into place only when
complete: a reader never sees a half-written quarter, and a run killed midway leaves the quarter
published before it as it was. The routed folder is swapped in two renames (old aside, new in);
`recover` puts the old folder back if a run died between them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines import lifecycle, parameters, rules
from pipelines.quarters import Quarter

# extracts.md §4: a feedback folder is named for a receiving department, county_coordination too
FEEDBACK_DEPARTMENTS = rules.ROUTES
COORDINATION = "county_coordination"
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
ROUTING_SCHEMA = {
    "quarter": pl.String,
    "warning_key": pl.String,
    "routed_to": pl.String,
    "county_code": pl.String,
    "escalation_copy": pl.Boolean,
}
_QUARTER_DIR = re.compile(r"^\d{4}Q[1-4]$")
PAUSE_ENV = "SAFETYNET_PAUSE_BEFORE_PUBLISH"  # seconds; lets a test kill a run mid-publish


def processed_quarters(out: Path) -> list[Quarter]:
    return (
        sorted(
            Quarter.parse(p.name)
            for p in Path(out).iterdir()
            if p.is_dir() and _QUARTER_DIR.match(p.name)
        )
        if Path(out).is_dir()
        else []
    )


def routed_keys(out: Path, before: Quarter) -> dict[str, frozenset[str]]:
    """Every key routed to each department in the quarters before `before` (escalation copies
    included): what that department's feedback may name (extracts.md §4)."""
    keys: dict[str, set[str]] = {}
    for q in processed_quarters(out):
        path = Path(out) / str(q) / "policy" / "routed.parquet"
        if q < before and path.is_file():
            for dept, key in pl.read_parquet(path).select("routed_to", "warning_key").iter_rows():
                keys.setdefault(dept, set()).add(key)
    return {d: frozenset(k) for d, k in keys.items()}


def previous_lifecycle(out: Path, quarter: Quarter) -> pl.DataFrame | None:
    """The lifecycle rows of the latest processed quarter before this one."""
    for q in reversed(processed_quarters(out)):
        path = Path(out) / str(q) / "tables" / "warning_lifecycle.parquet"
        if q < quarter and path.is_file():
            return pl.read_parquet(path)
    return None


def accepted_feedback(out: Path, quarter: Quarter) -> pl.DataFrame:
    """The feedback rows the gate accepted this quarter, from every department's folder (the
    free-text `note` stays in staging: it may name people)."""
    frames = []
    for dept in FEEDBACK_DEPARTMENTS:
        path = Path(out) / str(quarter) / "staging" / dept / "feedback.parquet"
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


@dataclass
class Published:
    quarter: str
    warnings: pl.DataFrame  # personal, with status and quarters_open
    lifecycle: pl.DataFrame
    routed_files: list[Path]
    feedback_rows: int


def publish(out: Path, quarter: Quarter, key: bytes) -> Published:
    """Apply the lifecycle and publish the quarter's routed files and analyst tables."""
    out = Path(out)
    q = str(quarter)
    recover(out, quarter)
    personal = out / q / "policy" / "warnings.parquet"
    raised = (
        pl.read_parquet(personal)
        if personal.is_file()
        else pl.DataFrame(schema=rules.WARNING_SCHEMA)
    )
    runs_path = out / q / "tables" / "rule_runs.parquet"
    runs = (
        pl.read_parquet(runs_path)
        if runs_path.is_file()
        else pl.DataFrame(schema=rules.RULE_RUN_SCHEMA)
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
    aside = out / q / f".publish-{os.getpid()}"
    shutil.rmtree(aside, ignore_errors=True)
    files = _write_routed(aside / "routed", routed)
    tables = {
        "tables/warnings.parquet": rules.analyst_warnings(warnings, key),
        "tables/warning_lifecycle.parquet": cycle,
        "tables/feedback.parquet": feedback,
        "policy/routed.parquet": routed.select(
            pl.lit(q).alias("quarter"),
            "warning_key",
            pl.col("file_department").alias("routed_to"),
            "county_code",
            "escalation_copy",
        ).cast(ROUTING_SCHEMA),  # type: ignore[arg-type]
    }
    for name, frame in tables.items():
        path = aside / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path)
    pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
    if pause:
        time.sleep(pause)
    # into place: every table file by an atomic rename, then the routed folder
    for name in tables:
        target = out / q / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(aside / name, target)
    _swap_dir(aside / "routed", out / q / "routed")
    shutil.rmtree(aside, ignore_errors=True)
    return Published(
        q,
        warnings,
        cycle,
        [out / q / "routed" / f.relative_to(aside / "routed") for f in files],
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


def _write_routed(folder: Path, routed: pl.DataFrame) -> list[Path]:
    """`<dept>/<county>.csv`, UTF-8 with BOM, sorted by rule then key (outputs.md §1)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (dept, county), rows in sorted(
        routed.partition_by(["file_department", "county_code"], as_dict=True).items()
    ):
        path = folder / str(dept) / f"{county}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.select(ROUTED_COLUMNS).sort("rule_id", "warning_key").write_csv(path, include_bom=True)
        written.append(path)
    return written


def _swap_dir(new: Path, target: Path) -> None:
    old = target.with_name(f"{target.name}.old-{os.getpid()}")
    if target.exists():
        os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


def recover(out: Path, quarter: Quarter) -> None:
    """Undo what a run killed mid-publish left: the old routed folder put back if it was moved
    aside and the new one never arrived; abandoned `.publish-*` folders removed."""
    folder = Path(out) / str(quarter)
    if not folder.is_dir():
        return
    target = folder / "routed"
    for old in sorted(folder.glob("routed.old-*")):
        if not target.exists():
            os.rename(old, target)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for aside in folder.glob(".publish-*"):
        shutil.rmtree(aside, ignore_errors=True)
