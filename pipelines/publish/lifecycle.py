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

OPEN = ("NEW", "RECURRING", "ESCALATED", "CARRIED_OVER")
RAISED = ("NEW", "RECURRING", "ESCALATED")
PRECEDENCE = ("ASSISTED", "TERMINATED", "NOT_ELIGIBLE", "IN_PROGRESS", "UNREACHABLE")
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


def decide_feedback(feedback: pl.DataFrame) -> pl.DataFrame:
    """One answer per key: the latest `action_date`, ties by PRECEDENCE (domain.md)."""
    if feedback.is_empty():
        return pl.DataFrame(schema={"warning_key": pl.String, "action": pl.String})
    rank = pl.col("action").replace_strict(
        {a: i for i, a in enumerate(PRECEDENCE)}, return_dtype=pl.Int64
    )
    return (
        feedback.with_columns(rank.alias("_rank"))
        .sort("warning_key", "action_date", "_rank", descending=[False, True, False])
        .group_by("warning_key", maintain_order=True)
        .first()
        .select("warning_key", "action")
    )


def rule_of(key: pl.Expr) -> pl.Expr:
    """`PNI_EDUCATION_AID-3f…` → `PNI_EDUCATION_AID`."""
    return key.str.replace(r"-[0-9a-f]+$", "")


def advance(
    quarter: Quarter,
    raised: pl.DataFrame,
    evaluated: set[str],
    feedback: pl.DataFrame,
    previous: pl.DataFrame | None,
    *,
    escalate_after: int,
    dismissal_quarters: int,
) -> pl.DataFrame:
    """The quarter's lifecycle rows. `raised` has `warning_key`, `rule_id`, `routed_to`,
    `county_code`; `feedback` the gate-accepted rows (`warning_key`, `action`, `action_date`);
    `previous` the lifecycle rows of the previous processed quarter (or None)."""
    q = str(quarter)
    last_suppressed = quarter
    for _ in range(dismissal_quarters - 1):
        last_suppressed = last_suppressed.next()
    prev = (
        pl.DataFrame(schema=LIFECYCLE_SCHEMA)
        if previous is None
        else previous.cast(LIFECYCLE_SCHEMA)  # type: ignore[arg-type]
    )
    alive = prev.filter(
        pl.col("status").is_in(OPEN)
        | (pl.col("status").eq("SUPPRESSED") & (pl.col("suppressed_until") >= q))
    ).select(
        "warning_key",
        pl.col("rule_id").alias("p_rule"),
        pl.col("routed_to").alias("p_routed_to"),
        pl.col("county_code").alias("p_county"),
        pl.col("status").is_in(OPEN).alias("p_open"),
        pl.col("quarters_open").alias("p_quarters_open"),
        pl.col("in_progress_seen").alias("p_in_progress"),
        pl.when(pl.col("status") == "SUPPRESSED")
        .then(pl.col("suppressed_until"))
        .alias("p_suppressed_until"),
    )
    now = raised.select(
        "warning_key",
        pl.col("rule_id").alias("r_rule"),
        pl.col("routed_to").alias("r_routed_to"),
        pl.col("county_code").alias("r_county"),
        pl.lit(True).alias("is_raised"),
    ).unique("warning_key")
    answers = decide_feedback(feedback)
    keys = pl.concat(
        [alive.select("warning_key"), now.select("warning_key"), answers.select("warning_key")]
    ).unique()
    frame = (
        keys.join(alive, on="warning_key", how="left")
        .join(now, on="warning_key", how="left")
        .join(answers, on="warning_key", how="left")
        .with_columns(
            pl.coalesce("r_rule", "p_rule", rule_of(pl.col("warning_key"))).alias("rule_id"),
            pl.coalesce("r_routed_to", "p_routed_to").alias("routed_to"),
            pl.coalesce("r_county", "p_county").alias("county_code"),
            pl.col("is_raised").fill_null(False),
            pl.col("p_open").fill_null(False),
            pl.col("p_in_progress").fill_null(False),
        )
        .with_columns(pl.col("rule_id").is_in(sorted(evaluated)).alias("evaluated"))
    )
    action = pl.col("action")
    closed = action.is_in(["ASSISTED", "TERMINATED"])
    dismissed = action == "NOT_ELIGIBLE"
    suppressed = pl.col("p_suppressed_until").is_not_null()
    in_progress = (pl.col("p_open") & pl.col("p_in_progress")) | (
        action == "IN_PROGRESS"
    ).fill_null(False)
    streak = pl.when(pl.col("p_open")).then(pl.col("p_quarters_open") + 1).otherwise(1)
    status = (
        pl.when(closed)
        .then(pl.lit("RESOLVED"))
        .when(dismissed | suppressed)
        .then(pl.lit("SUPPRESSED"))
        .when(~pl.col("evaluated"))
        .then(pl.when(pl.col("p_open")).then(pl.lit("CARRIED_OVER")))
        .when(pl.col("is_raised"))
        .then(
            pl.when(~pl.col("p_open"))
            .then(pl.lit("NEW"))
            .when((streak >= escalate_after) & ~in_progress)
            .then(pl.lit("ESCALATED"))
            .otherwise(pl.lit("RECURRING"))
        )
        .when(pl.col("p_open"))
        .then(pl.lit("RESOLVED"))
    )
    quarters_open = (
        pl.when(pl.col("status").is_in(["NEW", "RECURRING", "ESCALATED"]))
        .then(streak)
        .when(pl.col("status").is_in(["CARRIED_OVER", "RESOLVED"]))
        .then(pl.col("p_quarters_open"))
    )
    return (
        frame.with_columns(status.alias("status"))
        .filter(pl.col("status").is_not_null())
        .with_columns(
            pl.lit(q).alias("quarter"),
            quarters_open.alias("quarters_open"),
            action.alias("feedback_action"),
            pl.when(pl.col("status").is_in(["NEW", "RECURRING", "ESCALATED", "CARRIED_OVER"]))
            .then(in_progress)
            .otherwise(False)
            .alias("in_progress_seen"),
            pl.when(dismissed)
            .then(pl.lit(str(last_suppressed)))
            .when(pl.col("status") == "SUPPRESSED")
            .then(pl.col("p_suppressed_until"))
            .alias("suppressed_until"),
        )
        .select(list(LIFECYCLE_SCHEMA))
        .cast(LIFECYCLE_SCHEMA)  # type: ignore[arg-type]
        .sort("rule_id", "warning_key")
    )
