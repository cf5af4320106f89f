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
import json
import shutil
import tempfile
from pathlib import Path

from bench import BENCH_DIR
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
    (BENCH_DIR / f"report-stages-{name}.md").write_text(md, encoding="utf-8")
    (BENCH_DIR / f"report-stages-{name}.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    print()
    print(md)
    return 0 if all(r["completed"] for r in rows) and len(rows) == len(stages) else 1


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
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
