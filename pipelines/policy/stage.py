"""The policy stage as the quarterly job runs it: one quarter's facts and rules, written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter
from pipelines.policy import evaluate, facts, saved
from pipelines.policy.engine import DEFAULT_MEMORY, open_engine


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
    spark_session: Any = None,
) -> Evaluated:
    """Read what the gate accepted for the quarter and its window, evaluate every rule in a
    session of `engine` (one of `engine.ENGINES`, spilling to `<out>/.duckdb/` or `<out>/.spark/`
    past `memory_limit`; Spark's in `spark_session` where given) and write the quarter's policy
    outputs, and the facts as evaluated for what-if comparisons (`saved.py`)."""
    sources = facts.Sources.from_out(out, quarter)
    spill = Outputs(out).spill(engine)
    with open_engine(engine, spill, memory_limit, spark_session=spark_session) as session:
        evaluation = evaluate.evaluate_sources(sources, key, engine=session)
        saved.forget(out, str(quarter))
        written = evaluate.write(out, evaluation)
        saved.save(session, out, sources, evaluation, key)
    return Evaluated(evaluation, sources, written)
