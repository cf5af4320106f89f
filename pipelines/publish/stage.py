"""Publishing as the quarterly job runs it: the quarter published, loaded into the warehouse,
and its quality report written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter
from pipelines.policy.engine import DEFAULT_MEMORY, open_engine
from pipelines.publish import report, routed, warehouse
from pipelines.publish.routed import Routed


@dataclass
class Published:
    """A quarter published: its lifecycle and routed files, the rows loaded into the warehouse
    (by table), and its quality report."""

    routed: Routed
    warehouse_rows: dict[str, int]
    report: Path


def publish_quarter(
    out: Path,
    quarter: Quarter,
    key: bytes,
    *,
    engine: str = "duckdb",
    memory_limit: str = DEFAULT_MEMORY,
    spark_session: Any = None,
) -> Published:
    """The lifecycle compared on `engine` (as the policy stage's), the routed files and analyst
    tables written, the warehouse loaded, the quality report written."""
    spill = Outputs(out).spill(engine)
    with open_engine(engine, spill, memory_limit, spark_session=spark_session) as session:
        routed_quarter = routed.publish(out, quarter, key, engine=session)
    loaded = warehouse.load_quarter(out, str(quarter))
    return Published(routed_quarter, loaded, report.write_quality_report(out, str(quarter)))


def lifecycle_text(out: Path, quarter: Quarter) -> str | None:
    """`lifecycle: NEW n, …; k routed files under …` for a published quarter, else None."""
    q = Outputs(out).quarter(quarter)
    if not q.table("warning_lifecycle").is_file():
        return None
    counts = pl.read_parquet(q.table("warning_lifecycle")).group_by("status").len().sort("status")
    return (
        "lifecycle: "
        + (", ".join(f"{s} {n:,}" for s, n in counts.iter_rows()) or "none")
        + f"; {len(q.routed_files())} routed files under {q.routed}"
    )
