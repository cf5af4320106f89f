"""Quarters in a row: does a quarter cost more as the history grows? `python -m bench.history`.

    python -m bench.history [--scale county] [--quarters 12] [--seed 1] [--keep]

Generates `--quarters` consecutive quarters ending 2026Q3 at `--scale`, then runs the quarterly
job on each in order (`safetynet run`, one quarter at a time, in this process), and reports each
quarter's wall time and its steps' times from the Dagster event log. The issue's target: the
twelfth quarter costs at most 1.1× the second. Writes `.bench/report-history-<scale>.{md,json}`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench import BENCH_DIR, write_report
from bench.gate import code_version, machine_info

GATE_STEPS = ("gate__feedback", "gate__extract_quality")
TARGET = 1.1


def _steps(home: Path) -> dict[str, dict[str, float]]:
    """partition -> step -> seconds, from the instance's event log."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home))
    try:
        out: dict[str, dict[str, float]] = {}
        for record in instance.get_run_records():
            run = record.dagster_run
            started, ended = {}, {}
            for e in instance.all_logs(run.run_id):
                if not (e.dagster_event and e.step_key):
                    continue
                kind = e.dagster_event.event_type_value
                if kind == "STEP_START":
                    started[e.step_key] = e.timestamp
                elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                    ended[e.step_key] = e.timestamp
            seconds = {k: ended[k] - started[k] for k in started if k in ended}
            grouped = {
                "extracts": sum(
                    v
                    for k, v in seconds.items()
                    if k not in GATE_STEPS and not k.startswith(("policy__", "outputs__"))
                ),
                **{
                    k.split("__", 1)[1]: v
                    for k, v in seconds.items()
                    if "__" in k and (k in GATE_STEPS or k.startswith(("policy__", "outputs__")))
                },
            }
            out[run.tags.get("dagster/partition", run.run_id)] = grouped
        return out
    finally:
        instance.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="county")
    ap.add_argument("--quarters", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)

    from pipelines.core import pseudonym
    from pipelines.core.layout import Outputs
    from pipelines.core.quarters import Quarter
    from pipelines.generate import generate
    from pipelines.orchestration import cli
    from pipelines.orchestration.resources import KEY_ENV

    os.environ.setdefault(KEY_ENV, pseudonym.DEMO_KEY)  # synthetic data only
    last = Quarter.parse("2026Q3")
    quarters = [last]
    while len(quarters) < a.quarters:
        quarters.insert(0, quarters[0].previous())
    BENCH_DIR.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"history-{a.scale}-", dir=BENCH_DIR))
    landing, out = work / "landing", work / "out"
    try:
        g = generate(landing, a.scale, quarters, a.seed)
        print(f"generated {a.scale}, {len(quarters)} quarters, in {g.seconds:.0f} s", flush=True)
        walls, codes = {}, {}
        for q in quarters:
            t0 = time.perf_counter()
            code = cli.run(landing, out, [q], echo=lambda *_: None)
            walls[str(q)] = time.perf_counter() - t0
            codes[str(q)] = code
            print(f"  {q}: {walls[str(q)]:.1f} s (exit {code})", flush=True)
        steps = _steps(Outputs(out).dagster_home)
    finally:
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    names = [str(q) for q in quarters]
    ratio = walls[names[-1]] / walls[names[1]] if len(names) > 1 else None
    # A quarter before a parameter takes effect fails its publishing (policy.md §3: it cannot be
    # evaluated), which makes it shorter: the ratio is given over the quarters that succeeded too.
    done = [q for q in names if codes[q] == 0]
    ratio_done = walls[done[-1]] / walls[done[1]] if len(done) > 1 else None
    report = {
        "scale": a.scale,
        "quarters": names,
        "machine": machine_info(),
        "code": code_version(),
        "wall_seconds": walls,
        "exit_codes": codes,
        "steps": steps,
        "last_over_second": ratio,
        "last_over_second_succeeded": ratio_done,
        "target": TARGET,
    }
    columns = sorted({k for v in steps.values() for k in v}, key=lambda k: (k != "extracts", k))
    lines = [
        f"# {len(names)} quarters in a row — scale `{a.scale}` (seed {a.seed})",
        "",
        f"commit {report['code']['commit']}; last ÷ second = "
        + (f"{ratio:.2f} (target ≤ {TARGET})" if ratio else "–")
        + "; over the quarters that succeeded, last ÷ second = "
        + (f"{ratio_done:.2f}" if ratio_done else "–"),
        "",
        "| quarter | exit | wall | " + " | ".join(columns) + " |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for q in names:
        cells = [f"{steps.get(q, {}).get(c, 0):.1f}" for c in columns]
        lines.append(f"| {q} | {codes[q]} | {walls[q]:.1f} s | " + " | ".join(cells) + " |")
    md = "\n".join(lines) + "\n"
    write_report(f"report-history-{a.scale}", md, report)
    print()
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
