"""The warning lifecycle (domain.md, "dynamic monitoring"): a warning is a case that lives across
quarters, known by its stable `warning_key`.

`advance` takes the quarter's raised warnings, which rules were evaluated, the departments'
feedback that arrived with the quarter, and the lifecycle state left by the previous processed
quarter, and returns the quarter's `warning_lifecycle` rows (one per key) — the state the next
quarter reads. The decision for one key, in order:

1. feedback `ASSISTED`/`TERMINATED`: the case is closed — `RESOLVED` with the action, not raised;
2. feedback `NOT_ELIGIBLE`: `SUPPRESSED` in this quarter and the next `dismissal_quarters − 1`;
3. still inside a suppression: `SUPPRESSED`;
4. the rule was `NOT_EVALUATED`: an open case is `CARRIED_OVER`, unchanged (neither resolved nor
   aged);
5. raised: `NEW` (`quarters_open` 1) unless the case was open, then one more quarter open:
   `ESCALATED` from `escalate_after_quarters` on unless an `IN_PROGRESS` answer arrived during the
   streak, else `RECURRING`;
6. not raised but open: `RESOLVED`.
Several answers about one key in one quarter: the latest `action_date` wins, ties in the order
`ASSISTED`, `TERMINATED`, `NOT_ELIGIBLE`, `IN_PROGRESS`, `UNREACHABLE`.
"""

from __future__ import annotations

import polars as pl

from pipelines.core.quarters import Quarter
from pipelines.core.resources import LIFECYCLE_SQL
from pipelines.policy.engine import DuckDBEngine, Engine

RAISED = ("NEW", "RECURRING", "ESCALATED")
LIFECYCLE_SCHEMA = {
    "quarter": pl.String,
    "warning_key": pl.String,
    "rule_id": pl.String,
    "status": pl.String,
    "quarters_open": pl.Int64,
    "feedback_action": pl.String,
    "routed_to": pl.String,
    "county_code": pl.String,
    "in_progress_seen": pl.Boolean,
    "suppressed_until": pl.String,
}
FEEDBACK_SCHEMA = {
    "quarter": pl.String,
    "department": pl.String,
    "warning_key": pl.String,
    "action": pl.String,
    "action_date": pl.Date,
}


def advance(
    quarter: Quarter,
    raised: pl.DataFrame,
    evaluated: set[str],
    feedback: pl.DataFrame,
    previous: pl.DataFrame | None,
    *,
    escalate_after: int,
    dismissal_quarters: int,
    engine: Engine | None = None,
) -> pl.DataFrame:
    """The quarter's lifecycle rows. `raised` has `warning_key`, `rule_id`, `routed_to`,
    `county_code`; `feedback` the gate-accepted rows (`warning_key`, `action`, `action_date`);
    `previous` the lifecycle rows of the previous processed quarter (or None). The comparison
    is `lifecycle.sql` (beside this module), run in `engine` (the policy stage's kind of
    session; without one, a DuckDB session of its own)."""
    last_suppressed = quarter
    for _ in range(dismissal_quarters - 1):
        last_suppressed = last_suppressed.next()
    tables = {
        "previous": pl.DataFrame(schema=LIFECYCLE_SCHEMA)
        if previous is None
        else previous.select(list(LIFECYCLE_SCHEMA)).cast(LIFECYCLE_SCHEMA),  # type: ignore[arg-type]
        "raised": raised.select("warning_key", "rule_id", "routed_to", "county_code").cast(
            pl.String
        ),
        "feedback": feedback.select("warning_key", "action", "action_date").cast(
            {"warning_key": pl.String, "action": pl.String, "action_date": pl.Date}
        ),
        "evaluated_rules": pl.DataFrame(
            {"rule_id": sorted(evaluated)}, schema={"rule_id": pl.String}
        ),
    }
    own = engine is None
    session = DuckDBEngine(threads=1) if engine is None else engine
    try:
        for name, frame in tables.items():
            session.table_from_arrow(name, frame.to_arrow())
        rows = session.arrow(
            LIFECYCLE_SQL.read_text(encoding="utf-8"),
            {
                "quarter": str(quarter),
                "escalate_after": escalate_after,
                "last_suppressed": str(last_suppressed),
            },
        )
    finally:
        if own:
            session.close()
    return (
        pl.from_arrow(rows)
        .cast(LIFECYCLE_SCHEMA)  # type: ignore[arg-type]
        .sort("rule_id", "warning_key")
    )
