"""The warning lifecycle (domain.md), case by case: each test says what happens to a warning
across quarters."""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipelines.core.quarters import Quarter
from pipelines.publish import lifecycle

Q = [Quarter(2025, 3), Quarter(2025, 4), Quarter(2026, 1), Quarter(2026, 2), Quarter(2026, 3)]
KEY = "PNI_EDUCATION_AID-00000000000000aa"
OTHER = "NE_DIBAO-00000000000000bb"


def _raised(*keys: str) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "warning_key": k,
                "rule_id": k.split("-")[0],
                "routed_to": "moe" if k.startswith("PNI") else "mca",
                "county_code": "350102",
            }
            for k in keys
        ],
        schema={
            "warning_key": pl.String,
            "rule_id": pl.String,
            "routed_to": pl.String,
            "county_code": pl.String,
        },
    )


def _feedback(q: Quarter, *rows: tuple[str, str, int]) -> pl.DataFrame:
    """(key, action, day of the quarter)."""
    return pl.DataFrame(
        [
            {
                "quarter": str(q),
                "department": "moe",
                "warning_key": k,
                "action": a,
                "action_date": q.start + dt.timedelta(days=d),
            }
            for k, a, d in rows
        ],
        schema=lifecycle.FEEDBACK_SCHEMA,
    )


def _run(plan: list[tuple[tuple[str, ...], set[str] | None, pl.DataFrame | None]]):
    """One step per quarter: (keys raised, rules evaluated or None for all, feedback)."""
    previous, states = None, []
    for q, (keys, evaluated, feedback) in zip(Q, plan, strict=False):
        rows = lifecycle.advance(
            q,
            _raised(*keys),
            evaluated if evaluated is not None else {"PNI_EDUCATION_AID", "NE_DIBAO"},
            feedback if feedback is not None else _feedback(q),
            previous,
            escalate_after=3,
            dismissal_quarters=2,
        )
        states.append({r["warning_key"]: r for r in rows.iter_rows(named=True)})
        previous = rows
    return states


def _status(states, key=KEY):
    return [(s[key]["status"], s[key]["quarters_open"]) if key in s else None for s in states]


def test_a_warning_raised_three_quarters_running_is_new_recurring_then_escalated():
    states = _run([((KEY,), None, None)] * 4)
    assert _status(states) == [("NEW", 1), ("RECURRING", 2), ("ESCALATED", 3), ("ESCALATED", 4)]


def test_a_warning_no_longer_raised_is_resolved_once_and_then_gone():
    states = _run([((KEY,), None, None), ((KEY,), None, None), ((), None, None), ((), None, None)])
    assert _status(states) == [("NEW", 1), ("RECURRING", 2), ("RESOLVED", 2), None]


def test_a_warning_raised_again_after_resolution_is_a_new_case():
    states = _run([((KEY,), None, None), ((), None, None), ((KEY,), None, None)])
    assert _status(states) == [("NEW", 1), ("RESOLVED", 1), ("NEW", 1)]


def test_an_in_progress_answer_keeps_the_streak_from_escalating():
    states = _run(
        [
            ((KEY,), None, None),
            ((KEY,), None, _feedback(Q[1], (KEY, "IN_PROGRESS", 5))),
            ((KEY,), None, None),
            ((KEY,), None, None),
        ]
    )
    assert _status(states) == [("NEW", 1), ("RECURRING", 2), ("RECURRING", 3), ("RECURRING", 4)]


def test_an_unreachable_answer_leaves_the_warning_open_and_escalating():
    states = _run(
        [
            ((KEY,), None, None),
            ((KEY,), None, _feedback(Q[1], (KEY, "UNREACHABLE", 5))),
            ((KEY,), None, None),
        ]
    )
    assert _status(states) == [("NEW", 1), ("RECURRING", 2), ("ESCALATED", 3)]
    assert states[1][KEY]["feedback_action"] == "UNREACHABLE"


def test_an_assisted_answer_closes_the_case_even_while_the_rule_still_fires():
    states = _run(
        [
            ((KEY,), None, None),
            ((KEY,), None, _feedback(Q[1], (KEY, "ASSISTED", 5))),
            ((KEY,), None, None),
        ]
    )
    assert _status(states) == [("NEW", 1), ("RESOLVED", 1), ("NEW", 1)]
    assert states[1][KEY]["feedback_action"] == "ASSISTED"


def test_a_not_eligible_answer_suppresses_for_two_quarters_then_the_warning_may_return():
    states = _run(
        [
            ((KEY,), None, None),
            ((KEY,), None, _feedback(Q[1], (KEY, "NOT_ELIGIBLE", 5))),
            ((KEY,), None, None),
            ((KEY,), None, None),
        ]
    )
    assert _status(states) == [("NEW", 1), ("SUPPRESSED", None), ("SUPPRESSED", None), ("NEW", 1)]
    assert states[1][KEY]["suppressed_until"] == str(Q[2])


def test_a_quarter_not_evaluated_carries_the_warning_over_unchanged():
    states = _run(
        [
            ((KEY,), None, None),
            ((KEY,), None, None),
            ((), {"NE_DIBAO"}, None),  # the education rule was not evaluated
            ((KEY,), None, None),
        ]
    )
    assert _status(states) == [("NEW", 1), ("RECURRING", 2), ("CARRIED_OVER", 2), ("ESCALATED", 3)]


def test_the_latest_answer_wins_and_a_tie_goes_to_the_stronger_action():
    later = _feedback(Q[1], (KEY, "NOT_ELIGIBLE", 5), (KEY, "IN_PROGRESS", 30))
    states = _run([((KEY,), None, None), ((KEY,), None, later)])
    assert states[1][KEY]["feedback_action"] == "IN_PROGRESS"
    assert states[1][KEY]["status"] == "RECURRING"
    tie = _feedback(Q[1], (KEY, "IN_PROGRESS", 5), (KEY, "TERMINATED", 5))
    states = _run([((KEY,), None, None), ((KEY,), None, tie)])
    assert _status(states) == [("NEW", 1), ("RESOLVED", 1)]
    assert states[1][KEY]["feedback_action"] == "TERMINATED"


def test_other_warnings_are_not_touched_by_an_answer_about_one():
    states = _run(
        [
            ((KEY, OTHER), None, None),
            ((KEY, OTHER), None, _feedback(Q[1], (KEY, "ASSISTED", 5))),
        ]
    )
    assert _status(states, OTHER) == [("NEW", 1), ("RECURRING", 2)]
