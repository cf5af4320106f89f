"""`safetynet generate`: a synthetic Fujian landing folder, deterministic for a seed (issue 3).

    generate(out, scale="county", quarters=[Quarter(2026, 3)], seed=1)

writes `<out>/<quarter>/<dept>/<extract>.<ext>` for every extract of extracts.md §3 in the
departments' habits (`habits`), plus `<out>/<quarter>/_planted_errors.json`: per department and
extract, the rows the gate must quarantine per reason (the planted bad rows), so that a test can
assert exact quarantine counts; and `<out>/<quarter>/_planted_cases.json`: the planted positive
and near-miss cases of every rule of policy.md §2 (`plants`, `households`; listed in
docs/generator.md).

Scales: `test` ≈ 2,000 residents, `county` ≈ 50,000 (鼓楼区), `city` ≈ 1,000,000 (Fuzhou's
counties), `province` ≈ 42,000,000 (every county in force).

The people are drawn once for the seed (`province`), so consecutive quarters show the same
people; the extracts of a quarter are built from them (`extracts`). The bytes depend only on
(scale, seed, quarter): generating 2026Q3 alone or within 2026Q1..2026Q4 gives the same files.

`province` is built and written county by county, column-wise (`stream`): the `samples`
writers take rows as dicts, which at 42 M residents needs far more memory than this machine has.
The smaller scales keep the dict writers (their bytes are unchanged).

Feedback: from the second generated quarter on, the receiving departments answer planted
positive warnings routed in earlier quarters (`<out>/<quarter>/<dept>/feedback.csv`, with
`<out>/<quarter>/_planted_feedback.json`: the schedule and the lifecycle outcome it must give;
`feedback`). Those files, and the `manifest.json` of a department that lists its feedback,
depend on the run's first quarter, not on (scale, seed, quarter) alone; the keys match only when
the pipeline runs with the demo pseudonym key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.core import contracts
from pipelines.core.layout import Landing
from pipelines.core.quarters import Quarter
from pipelines.generate import extracts, feedback, habits, plants, province, samples, stream
from pipelines.generate.habits import PLANTED_ERRORS

CHUNKED = ("province",)  # built and written county by county (`stream`)


@dataclass
class Generated:
    out: Path
    scale: str
    seed: int
    quarters: list[str]
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # quarter -> dept.extract -> rows
    seconds: float = 0.0
    bytes: int = 0


def generate(
    out: Path, scale: str, quarters: list[Quarter], seed: int = 1, *, log=None
) -> Generated:
    """Write the landing folder for `quarters` (see the module docstring)."""
    if scale not in province.SCALES:
        raise ValueError(f"unknown scale {scale!r}: one of {', '.join(province.SCALES)}")
    t0 = time.perf_counter()
    out = Path(out)
    result = Generated(out, scale, seed, [str(q) for q in quarters])
    if scale in CHUNKED:
        result.rows, planted = stream.generate_chunked(
            out, scale, quarters, seed, province.SCALES[scale], log=log
        )
        feedback.write(out, quarters, planted)
        return _finish(result, t0)
    pop = province.build(scale, seed)
    every = contracts.extract_contracts()
    chosen = plants.subjects(pop)
    planted_cases: dict[Quarter, list[dict]] = {}
    for q in quarters:
        people = province.at(pop, q.end)
        frames = extracts.quarter_extracts(people, province.residents(people), q, seed)
        for contract in every:  # a department re-sending a quarter replaces its folder
            samples.remove_folder(Landing(out).folder(q, contract.department))
        subjects = dict(chosen)
        cases = plants.apply(frames, subjects, q, people)
        protected = frozenset(subjects.values())
        planted: dict[str, dict[str, dict[str, int]]] = {}
        counts: dict[str, int] = {}
        for index, contract in enumerate(every):
            key = (contract.department, contract.extract)
            rng = np.random.default_rng([seed, 3, q.year, q.q, index])
            path, expected = habits.write(out, contract, frames[key], q, scale, rng, protected)
            planted.setdefault(contract.department, {})[contract.extract] = dict(
                sorted(expected.items())
            )
            counts[contract.name] = frames[key].height
            if log:
                log(f"{q} {contract.name}: {frames[key].height:,} rows -> {path.name}")
        sidecar = Landing(out).sidecar(q, PLANTED_ERRORS)
        sidecar.write_text(
            json.dumps(planted, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        plants.write(out, q, cases)
        planted_cases[q] = cases
        result.rows[str(q)] = counts
    feedback.write(out, quarters, planted_cases)
    return _finish(result, t0)


def _finish(result: Generated, t0: float) -> Generated:
    out = result.out
    result.seconds = time.perf_counter() - t0
    result.bytes = sum(
        p.stat().st_size
        for q in result.quarters
        for p in Landing(out).quarter(q).rglob("*")
        if p.is_file()
    )
    return result


def planted_errors(out: Path, quarter: Quarter | str) -> dict[str, dict[str, dict[str, int]]]:
    """dept -> extract -> reason -> rows the gate must quarantine with that reason."""
    return json.loads(Landing(out).sidecar(quarter, PLANTED_ERRORS).read_text(encoding="utf-8"))
