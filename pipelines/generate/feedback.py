"""Planted feedback (extracts.md §4; domain.md "Warning lifecycle"): the receiving departments'
answers about planted positive warnings, `<landing>/<F>/<dept>/feedback.csv`, and the lifecycle
outcome they must produce, `<landing>/<F>/_planted_feedback.json`.

The schedule is counted in quarters after the first quarter of the generated run (`k`): the
pipeline is expected to process the generated quarters in order, from the first, so that a key
answered in quarter k was routed in the quarters before it. The keys are those the engine writes
under the demo key (`pseudonym.DEMO_KEY`): with another key, no answer matches a routed warning.

The schedule (`SCHEDULE`; the table with the expected outcomes is in docs/generator.md):
- k=1: moe `ASSISTED` `edu_pos`; mca `TERMINATED` `nle_assets_pos`; nhsa `NOT_ELIGIBLE`
  `enrol_pos`; hrss `IN_PROGRESS` `job_pos`; mem `UNREACHABLE` `disaster_pos`; mohurd names the
  key of `care_pos` (routed to cdpf) and the unknown `PNI_EDUCATION_AID-0000000000000000`;
- k=2: mohurd `UNREACHABLE` `urban_pos` (escalated all the same);
- k=3: about `living_pos`, cdpf `UNREACHABLE` and county_coordination `ASSISTED` on one day
  (the tie goes to `ASSISTED`); about `care_pos`, cdpf `ASSISTED` on day 10 and
  county_coordination `UNREACHABLE` on day 50 (the latest wins);
- `rural_pos` is never answered: `ESCALATED` from k=2.

county_coordination answers at k=3 about keys ESCALATED at k=2, whose copies were routed to it.
mohurd's k=1 file holds only the two rows the gate must quarantine: it passes with both
quarantined (`max_quarantine_share` does not apply to feedback), and neither answer counts.

A slot is planted only while its role's positive case is planted in every quarter of the run up
to the one concerned (at `test` scale some cases are absent). Departments with a manifest
(`habits.with_manifest`) list `feedback.csv` in it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.core import contracts, parameters, pseudonym
from pipelines.core.departments import COORDINATION
from pipelines.core.layout import MANIFEST, Landing
from pipelines.core.quarters import Quarter
from pipelines.generate import habits, samples
from pipelines.policy.catalogue import catalogue

PLANTED_FEEDBACK = "_planted_feedback.json"
# The lifecycle parameters the schedule's expected outcomes were worked out for: a run over
# quarters where another value is in effect is refused, rather than planted with wrong outcomes.
WRITTEN_FOR = {"escalate_after_quarters": 3, "dismissal_quarters": 2}
FEEDBACK_FILE = "feedback.csv"
UNKNOWN_KEY = "PNI_EDUCATION_AID-0000000000000000"
UNKNOWN_REASON = "warning_key.unknown_warning"
NOTES = {
    "ASSISTED": "已落实救助",
    "TERMINATED": "已停发待遇",
    "NOT_ELIGIBLE": "核实不符合条件",
    "IN_PROGRESS": "正在办理",
    "UNREACHABLE": "多次联系未果",
}


@dataclass(frozen=True)
class Answer:
    k: int  # quarters after the run's first
    department: str | None  # None: the rule's `routed_to`
    action: str
    day: int  # days after the quarter's first day
    quarantined: bool = False


@dataclass(frozen=True)
class Slot:
    name: str
    role: str | None  # the planted positive answered about (None: the unknown key)
    answers: tuple[Answer, ...]
    # k -> (status, quarters_open or None, decided feedback action or None)
    expect: dict[int, tuple[str | None, int | None, str | None]]


SCHEDULE = (
    Slot(
        "assisted",
        "edu_pos",
        (Answer(1, None, "ASSISTED", 14),),
        {1: ("RESOLVED", None, "ASSISTED"), 2: ("NEW", 1, None)},
    ),
    Slot(
        "terminated",
        "nle_assets_pos",
        (Answer(1, None, "TERMINATED", 20),),
        {1: ("RESOLVED", None, "TERMINATED"), 2: ("NEW", 1, None)},
    ),
    Slot(
        "not_eligible",
        "enrol_pos",
        (Answer(1, None, "NOT_ELIGIBLE", 30),),
        {
            1: ("SUPPRESSED", None, "NOT_ELIGIBLE"),
            2: ("SUPPRESSED", None, None),
            3: ("NEW", 1, None),
        },
    ),
    Slot(
        "in_progress",
        "job_pos",
        (Answer(1, None, "IN_PROGRESS", 25),),
        {
            1: ("RECURRING", 2, "IN_PROGRESS"),
            2: ("RECURRING", 3, None),
            3: ("RECURRING", 4, None),
        },
    ),
    Slot(
        "unreachable",
        "disaster_pos",
        (Answer(1, None, "UNREACHABLE", 40),),
        {1: ("RECURRING", 2, "UNREACHABLE"), 2: ("ESCALATED", 3, None), 3: ("ESCALATED", 4, None)},
    ),
    Slot(
        "untouched",
        "rural_pos",
        (),
        {
            0: ("NEW", 1, None),
            1: ("RECURRING", 2, None),
            2: ("ESCALATED", 3, None),
            3: ("ESCALATED", 4, None),
        },
    ),
    Slot(
        "unreachable_escalated",
        "urban_pos",
        (Answer(2, None, "UNREACHABLE", 45),),
        {2: ("ESCALATED", 3, "UNREACHABLE")},
    ),
    Slot(
        "tie",
        "living_pos",
        (Answer(3, None, "UNREACHABLE", 40), Answer(3, COORDINATION, "ASSISTED", 40)),
        {2: ("ESCALATED", 3, None), 3: ("RESOLVED", None, "ASSISTED")},
    ),
    Slot(
        "latest",
        "care_pos",
        (Answer(3, None, "ASSISTED", 10), Answer(3, COORDINATION, "UNREACHABLE", 50)),
        {2: ("ESCALATED", 3, None), 3: ("ESCALATED", 4, "UNREACHABLE")},
    ),
    Slot(
        "misrouted",
        "care_pos",
        (Answer(1, "mohurd", "IN_PROGRESS", 35, quarantined=True),),
        {1: ("RECURRING", 2, None)},
    ),
    Slot("unknown", None, (Answer(1, "mohurd", "UNREACHABLE", 35, quarantined=True),), {}),
)


def key_of(case: dict) -> str:
    """The warning key the engine gives a planted case under the demo key."""
    source = case.get("household_source")
    kind = "PERSON" if source is None else "HOUSEHOLD"
    return pseudonym.warning_key(
        pseudonym.DEMO_KEY.encode(), case["rule_id"], kind, source, case["subject"]
    )


def _positives(cases: list[dict]) -> dict[str, dict]:
    return {c["role"]: c for c in cases if c["expect"] == "warning"}


def plan(
    quarters: list[Quarter], cases: dict[Quarter, list[dict]]
) -> dict[Quarter, tuple[dict[str, list[dict]], list[dict]]]:
    """Quarter -> (department -> feedback rows, the sidecar's entries)."""
    run = sorted(quarters)
    for name, value in WRITTEN_FOR.items() if run else ():
        in_effect = parameters.parameters()[name].in_effect(run[0].start, run[-1].end)
        if any(int(v) != value for v in in_effect):
            raise ValueError(
                f"the planted feedback's outcomes (generate/feedback.py SCHEDULE) were worked "
                f"out for {name} = {value}; rules/parameters/{name}.yaml has {in_effect} in "
                f"{run[0]}..{run[-1]}: work them out again for it"
            )
    routed = {r.rule_id: r.routed_to for r in catalogue()}
    positives = [_positives(cases.get(q, [])) for q in run]
    out: dict[Quarter, tuple[dict[str, list[dict]], list[dict]]] = {}
    for k, q in enumerate(run):
        files: dict[str, list[dict]] = {}
        entries: list[dict] = []
        for slot in SCHEDULE:
            if slot.role is None:
                case, key, rule_id, owner = None, UNKNOWN_KEY, "PNI_EDUCATION_AID", None
            else:
                if not all(slot.role in p for p in positives[: k + 1]):
                    continue  # not raised in every quarter so far: the slot is off
                case = positives[k][slot.role]
                key, rule_id = key_of(case), case["rule_id"]
                owner = routed[rule_id]
            answers = [a for a in slot.answers if a.k == k]
            status, quarters_open, action = slot.expect.get(k, (None, None, None))
            for a in answers:
                dept = a.department or owner
                if dept is None:  # pragma: no cover - every slot's answer has a department
                    raise ValueError(f"{slot.role}: an answer without a department")
                day = q.start + dt.timedelta(days=a.day)
                files.setdefault(dept, []).append(
                    {
                        "warning_key": key,
                        "action": a.action,
                        "action_date": day.isoformat(),
                        "note": NOTES[a.action],
                    }
                )
                entry = {
                    "slot": slot.name,
                    "warning_key": key,
                    "rule_id": rule_id,
                    "role": slot.role,
                    "department": dept,
                    "action": a.action,
                    "action_date": day.isoformat(),
                    "expect_status": status,
                }
                if quarters_open is not None:
                    entry["expect_quarters_open"] = quarters_open
                if action is not None:
                    entry["expect_feedback_action"] = action
                if a.quarantined:
                    entry["expect_quarantined"] = UNKNOWN_REASON
                entries.append(entry)
            if not answers and status is not None:
                entry = {
                    "slot": slot.name,
                    "warning_key": key,
                    "rule_id": rule_id,
                    "role": slot.role,
                    "department": owner,
                    "action": None,
                    "action_date": None,
                    "expect_status": status,
                }
                if quarters_open is not None:
                    entry["expect_quarters_open"] = quarters_open
                entries.append(entry)
        entries.sort(key=lambda e: (e["warning_key"], e["department"] or "", e["slot"]))
        out[q] = (files, entries)
    return out


def write(out: Path, quarters: list[Quarter], cases: dict[Quarter, list[dict]]) -> None:
    """Write every quarter's feedback files and `_planted_feedback.json` (after the extracts and
    their manifests: a manifest department's `manifest.json` gains `feedback.csv`)."""
    contract = contracts.feedback_contract()
    for q, (files, entries) in plan(quarters, cases).items():
        landing = Landing(out)
        samples.remove_folder(landing.folder(q, COORDINATION))  # holds only feedback
        for dept, rows in sorted(files.items()):
            path = samples.extract_path(Path(out), contract, "csv", quarter=q, dept=dept)
            rows = sorted(rows, key=lambda r: r["warning_key"])
            samples.write_csv(path, contract, rows)
            if habits.with_manifest(dept):
                _list_in_manifest(path, len(rows), dept, q)
        landing.sidecar(q, PLANTED_FEEDBACK).write_text(
            json.dumps(entries, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )


def _list_in_manifest(path: Path, rows: int, dept: str, q: Quarter) -> None:
    """Add the file to its folder's `manifest.json`, keeping the entries there (their hashes
    are not recomputed: the extracts may be large)."""
    manifest = path.parent / MANIFEST
    doc = (
        json.loads(manifest.read_text(encoding="utf-8"))
        if manifest.is_file()
        else {"department": dept, "quarter": str(q), "files": {}}
    )
    doc["files"][path.name] = {"rows": rows, "sha256": samples.sha256(path)}
    manifest.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")


def planted_feedback(out: Path, quarter: Quarter | str) -> list[dict]:
    return json.loads(Landing(out).sidecar(quarter, PLANTED_FEEDBACK).read_text(encoding="utf-8"))
