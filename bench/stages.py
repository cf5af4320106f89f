"""The harness for every stage of a quarter: `python -m bench.stages [--scale city]`.

Each stage runs in a fresh process (`bench.measure.run_step`), so its wall time and peak RSS are
its own: `generate` (`safetynet generate` at the scale, for the quarters), `quarter` (the
quarterly Dagster job in-process, as `safetynet run` runs it: every extract through the gate and
Great Expectations, the quarter's accounting, facts and rules) and `policy` (facts and rules
alone for the last quarter, on what `quarter` left: the comparison's own time and peak RSS,
then the facts saved as the policy step saves them, timed apart) and
`policy_spark` (the same on Spark, `local[*]`; its peak RSS adds the JVM's own, read from /proc,
to the Python process's), and `whatif` (the shipped reform on the last quarter, as `safetynet
whatif` runs it: the quarter's saved evaluation as the baseline, the reform evaluated where a
changed parameter reaches, then written).
`rows` of `policy` are the staging rows it loads (the quarter's and W's). Writes
`.bench/report-stages-<scale>.{md,json}` (`<scale>-<stages>` for a subset).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench import BENCH_DIR, write_report
from bench.gate import code_version, machine_info
from bench.measure import GIB, default_cap, run_step

STAGES = ("generate", "quarter", "policy", "policy_spark", "whatif")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="city", help="test, county, city or province")
    ap.add_argument("--quarters", default="2026Q3")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the landing and output folders")
    ap.add_argument(
        "--stages",
        default=",".join(STAGES),
        help=f"comma-separated, in order (default {','.join(STAGES)}); with --work, later "
        "stages can be re-measured on a kept folder",
    )
    ap.add_argument("--work", type=Path, help="a folder kept by an earlier --keep run")
    a = ap.parse_args(argv)
    BENCH_DIR.mkdir(exist_ok=True)
    machine = machine_info()
    stages = [s for s in a.stages.split(",") if s]
    work = a.work or Path(tempfile.mkdtemp(prefix=f"stages-{a.scale}-", dir=BENCH_DIR))
    keep = a.keep or a.work is not None
    landing, out = work / "landing", work / "out"
    common = {"landing": str(landing), "out": str(out), "quarters": a.quarters}
    cap = default_cap()
    rows = []
    try:
        for stage in stages:
            args = {**common, "scale": a.scale, "seed": a.seed} if stage == "generate" else common
            print(f"{stage} …", flush=True)
            run = run_step(stage, args, work, cap_bytes=cap, log=print)
            result = run.result or {}
            seconds = result.get("seconds") or run.wall_seconds
            rows.append(
                {
                    "stage": stage,
                    "completed": run.ok,
                    "seconds": seconds,
                    "rows": result.get("rows"),
                    "rows_per_s": (result.get("rows") or 0) / seconds if seconds else None,
                    # a Spark step's JVM is a process of its own: its peak added
                    "peak_rss_gib": ((run.peak_rss or 0) + (result.get("jvm_vm_hwm") or 0)) / GIB,
                    "detail": {k: v for k, v in result.items() if k not in ("seconds", "rows")},
                }
            )
            if stage == "quarter":
                rows[-1]["where"] = where_time_went(run.phases, run.wall_seconds)
            print(f"  {rows[-1]}", flush=True)
            if not run.ok:
                break
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "scale": a.scale,
        "quarters": a.quarters,
        "seed": a.seed,
        "machine": machine,
        "code": code_version(),
        "stages": rows,
    }
    md = render(report)
    # a subset of stages gets its own report, not the full run's
    name = a.scale if stages == list(STAGES) else f"{a.scale}-{'-'.join(stages)}"
    write_report(f"report-stages-{name}", md, report)
    print()
    print(md)
    return 0 if all(r["completed"] for r in rows) and len(rows) == len(stages) else 1


# the traced stage functions (bench.steps._trace_stages), in the order of a quarter's steps
PARTS = (
    ("gate_extract", "extract steps"),
    ("run_extract", "of which the gate"),
    ("ge", "of which GE and the result"),
    ("gate_feedback", "feedback"),
    ("account", "accounting, Data Docs"),
    ("evaluate_quarter", "policy"),
    ("publish_quarter", "publishing"),
    ("publish", "of which lifecycle and routed files"),
    ("load_quarter", "of which the warehouse"),
)


def where_time_went(phases, wall: float) -> dict:
    """Seconds and peak RSS per quarter and traced function (the calls the quarter's steps make;
    the feedback's own extracts stay inside `gate_feedback`; the gate is also counted inside
    its extract step, the lifecycle with routed files and the warehouse inside publishing),
    `ge` being an extract step's time outside the gate (Great Expectations and the saved
    result); the five slowest extract steps; and `rest`: the stage's wall time outside every
    traced call (process start, imports, Dagster's own work between steps)."""
    per: dict[str, dict[str, float]] = {}
    peak: dict[str, dict[str, float]] = {}
    extracts = []
    top = [p for p in phases if p.depth == 1]
    for p in phases:
        fn, quarter, *extract = p.name.split(" ")
        if p.depth == 1 or (p.depth == 2 and fn in {"run_extract", "publish", "load_quarter"}):
            part = per.setdefault(quarter, {})
            part[fn] = part.get(fn, 0.0) + p.seconds(p.start)
            high = peak.setdefault(quarter, {})
            high[fn] = max(high.get(fn, 0.0), p.rss_peak / GIB)
        if p.depth == 1 and fn == "gate_extract":
            extracts.append((p.seconds(p.start), quarter, extract[0]))
    for part in per.values():
        part["ge"] = part.get("gate_extract", 0.0) - part.get("run_extract", 0.0)
    extracts.sort(reverse=True)
    return {
        "per_quarter": per,
        "peak_rss_gib": peak,
        "slowest_extract_steps": [
            {"seconds": round(s, 2), "quarter": q, "extract": e} for s, q, e in extracts[:5]
        ],
        "rest": wall - sum(p.seconds(p.start) for p in top),
    }


def _render_where(stage: dict) -> list[str]:
    w = stage["where"]
    head = " | ".join(label for _, label in PARTS)
    lines = [
        "",
        f"Where `{stage['stage']}`'s time went (traced calls, seconds; the rest of its wall "
        f"time, {w['rest']:.1f} s, is process start, imports and Dagster between steps):",
        "",
        f"| quarter | {head} |",
        "| --- |" + " ---: |" * len(PARTS),
    ]
    for q, part in sorted(w["per_quarter"].items()):
        cells = " | ".join(f"{part.get(fn, 0.0):.1f}" for fn, _ in PARTS)
        lines.append(f"| {q} | {cells} |")
        high = w["peak_rss_gib"].get(q, {})
        cells = " | ".join(f"{high[fn]:.2f} GiB" if fn in high else "" for fn, _ in PARTS)
        lines.append(f"| {q}, peak RSS inside | {cells} |")
    slow = ", ".join(
        f"{e['extract']} {e['seconds']:.1f} s ({e['quarter']})" for e in w["slowest_extract_steps"]
    )
    lines += ["", f"Slowest extract steps: {slow or 'none'}."]
    return lines


def render(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"# Stages — scale `{r['scale']}`, quarters {r['quarters']} (seed {r['seed']})",
        "",
        f"{m['cpus']} CPUs · {m['memory_gib']:.1f} GiB RAM · polars {m['polars']} · "
        f"commit {r['code']['commit']}",
        "",
        "| stage | completed | wall time | rows | rows/s | peak RSS |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for s in r["stages"]:
        rows = f"{s['rows']:,}" if s["rows"] is not None else "–"
        rate = f"{s['rows_per_s']:,.0f}" if s["rows_per_s"] else "–"
        lines.append(
            f"| {s['stage']} | {'yes' if s['completed'] else 'NO'} | {s['seconds']:.1f} s | "
            f"{rows} | {rate} | {s['peak_rss_gib']:.2f} GiB |"
        )
    for s in r["stages"]:
        if s.get("where"):
            lines += _render_where(s)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
