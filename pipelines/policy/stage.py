"""The policy stage as the quarterly job runs it: one quarter's facts and rules, written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter
from pipelines.policy import evaluate, facts
from pipelines.policy.engine import DEFAULT_MEMORY, ENGINES


@dataclass
class Evaluated:
    evaluation: evaluate.Evaluation
    sources: facts.Sources
    written: dict[str, Path]


def evaluate_quarter(
    out: Path,
    quarter: Quarter,
    key: bytes,
    *,
    engine: str = "duckdb",
    memory_limit: str = DEFAULT_MEMORY,
) -> Evaluated:
    """Read what the gate accepted for the quarter and its window, evaluate every rule in a
    session of `engine` (one of `engine.ENGINES`; DuckDB spills to `<out>/.duckdb/` past
    `memory_limit`) and write the quarter's policy outputs."""
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not one of {sorted(ENGINES)}")
    sources = facts.Sources.from_out(out, quarter)
    with ENGINES[engine](Outputs(out).duckdb_spill, memory_limit) as session:
        evaluation = evaluate.evaluate(sources, key, engine=session)
    return Evaluated(evaluation, sources, evaluate.write(out, evaluation))
