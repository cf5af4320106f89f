"""Running the gate in a test: one extract gated, its staging and quarantine read back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.core import contracts
from pipelines.core.contracts import Contract
from pipelines.core.departments import ROUTES
from pipelines.core.quarters import Quarter
from pipelines.gate import accounting
from pipelines.gate import extract as gate
from pipelines.gate import stage as gate_stage
from pipelines.gate.reader import ROW_NUMBER
from pipelines.generate.samples import QUARTER


@dataclass
class GateRun:
    result: gate.ExtractResult
    staging: pl.DataFrame | None
    quarantine: pl.DataFrame | None

    def reasons_by_row(self) -> dict[int, set[str]]:
        """Quarantined row_number (1-based) -> its reasons."""
        if self.quarantine is None:
            return {}
        return {
            r[ROW_NUMBER]: set(r["reasons"])
            for r in self.quarantine.select(ROW_NUMBER, "reasons").iter_rows(named=True)
        }

    def staged_rows(self) -> list[int]:
        return [] if self.staging is None else sorted(self.staging[ROW_NUMBER].to_list())


def run_gate(
    contract: Contract,
    landing: Path,
    out: Path,
    *,
    quarter: Quarter = QUARTER,
    **options,
) -> GateRun:
    """Gate one extract and read back its staging and quarantine Parquet files."""
    checked = gate.run_extract(contract, landing, out, quarter, **options)
    result = checked.result
    staged, quarantined = result.staged(out), result.quarantined(out)
    staging = pl.read_parquet(staged) if staged else None
    quarantine = pl.read_parquet(quarantined) if quarantined else None
    return GateRun(result, staging, quarantine)


def gate_quarter(landing: Path, out: Path, quarter: Quarter) -> None:
    """Every extract of the quarter and the departments' feedback through the gate, and the
    quarter's accounting, as the job's gate does it (without Great Expectations and Dagster:
    `test_definitions` runs the job). The feedback is gated against the keys routed in the
    quarters published before, so quarters go through gate, policy and publishing in order."""
    for c in contracts.extract_contracts():
        previous = accounting.previous_accepted(
            out, str(quarter.previous()), c.department, c.extract
        )
        checked = gate.run_extract(c, landing, out, quarter, previous_accepted=previous)
        checked.close()
        accounting.save_result(out, checked.result)
    routed = gate_stage.routed_keys(out, quarter)
    for dept in ROUTES:
        if not any((landing / str(quarter) / dept).glob("feedback.*")):
            continue
        checked = gate.run_extract(
            contracts.feedback_contract(),
            landing,
            out,
            quarter,
            department=dept,
            routed_warning_keys=routed.get(dept, frozenset()),
            previous_accepted=None,
        )
        checked.close()
        accounting.save_result(out, checked.result)
    accounting.write_tables(out, str(quarter), accounting.load_results(out, str(quarter)))
