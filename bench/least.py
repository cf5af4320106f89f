"""The least a quarter can cost with this stack: `python -m bench.least --landing L --quarter Q`.

Two things every `safetynet run` of the quarter does before it checks a row, each measured in a
fresh process (`bench.measure.run_step`), the machine otherwise idle:
- `imports`: the interpreter's start and the imports a run cannot do without: safetynet's
  definitions (Dagster, Polars, DuckDB, the contracts and rule catalogue) and Great Expectations
  (wall time, process start included);
- `floor` of every CSV of the quarter's landing folder: DuckDB counting its rows, every column as
  text, on every core (the query's own time, summed over the files) — the least any reader does.
  A file DuckDB cannot read as UTF-8 (GB18030) has its lines counted in its bytes instead, and a
  workbook is not read at all: both lower the floor, so it stays a lower bound.

Their sum is a lower bound for the quarter with the whole job: it leaves out every check,
expectation, fact, rule and output, Dagster's own run and the saved results. Set beside
`--target` seconds, what is left is the budget for all of those. Writes
`.bench/report-least-<quarter>.{md,json}`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench import BENCH_DIR, write_report
from bench.gate import code_version, machine_info
from bench.measure import default_cap, run_step


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.least", description=__doc__.split("\n")[0])
    ap.add_argument("--landing", type=Path, required=True)
    ap.add_argument("--quarter", required=True)
    ap.add_argument("--target", type=float, default=12.0, help="seconds (the issue's city target)")
    ap.add_argument("--repeat", type=int, default=3, help="imports measured this many times")
    a = ap.parse_args(argv)
    BENCH_DIR.mkdir(exist_ok=True)
    files = sorted((a.landing / a.quarter).glob("*/*.csv"))
    if not files:
        raise SystemExit(f"no CSV under {a.landing / a.quarter}")
    work = Path(tempfile.mkdtemp(prefix="least-", dir=BENCH_DIR))
    try:
        return _measure(a, files, work, default_cap())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(a, files: list[Path], work: Path, cap: int) -> int:
    imports = []
    for _ in range(a.repeat):
        run = run_step("imports", {}, work, cap_bytes=cap, log=print)
        if not run.ok:
            raise SystemExit(f"imports failed: {run.stderr_tail}")
        imports.append(run.wall_seconds)
        spans = {ph.name: ph.seconds(ph.start) for ph in run.phases}
    reads, rows, by_bytes = {}, 0, []
    unread = sorted(
        f"{p.parent.name}/{p.name}"
        for p in (a.landing / a.quarter).glob("*/*")
        if p.suffix.lower() not in (".csv", ".json")
    )
    for f in files:
        args = {"csv": str(f), "bytes_if_unreadable": True}
        run = run_step("floor", args, work, cap_bytes=cap, log=print)
        if not run.ok:
            raise SystemExit(f"floor of {f} failed: {run.stderr_tail}")
        reads[f"{f.parent.name}/{f.name}"] = run.result["seconds"]
        rows += run.result["rows"]
        if run.result["reader"] != "duckdb":
            by_bytes.append(f"{f.parent.name}/{f.name}")
    least = min(imports) + sum(reads.values())
    report = {
        "landing": str(a.landing),
        "quarter": a.quarter,
        "machine": machine_info(),
        "code": code_version(),
        "imports_seconds": imports,
        "imports_spans_of_the_last": spans,
        "read_seconds": reads,
        "rows": rows,
        "lines_counted_in_bytes": by_bytes,
        "not_read": unread,
        "least_seconds": least,
        "target_seconds": a.target,
    }
    slowest = sorted(reads.items(), key=lambda kv: -kv[1])[:3]
    lines = [
        f"# The least a quarter costs — {a.landing} {a.quarter}",
        "",
        f"commit {report['code']['commit']} · {report['machine']['cpus']} CPUs",
        "",
        "| part | seconds |",
        "| --- | ---: |",
        f"| process start and imports (fastest of {a.repeat}: "
        f"{', '.join(f'{s:.2f}' for s in imports)}; in the last, checking the packaged data "
        f"{spans.get('definitions', 0):.2f} and importing Great Expectations "
        f"{spans.get('great_expectations', 0):.2f}) | {min(imports):.2f} |",
        f"| reading every CSV as text ({len(files)} files, {rows:,} rows; slowest "
        f"{', '.join(f'{k} {v:.2f}' for k, v in slowest)}) | {sum(reads.values()):.2f} |",
        f"| **least** | **{least:.2f}** |",
        f"| target | {a.target:.2f} |",
        f"| left for checks, expectations, facts, rules, outputs and Dagster | "
        f"{a.target - least:.2f} |",
    ]
    if by_bytes:
        lines += ["", f"Not UTF-8, their lines counted in their bytes: {', '.join(by_bytes)}."]
    if unread:
        lines += ["", f"Not CSV, not read (counted as 0 s): {', '.join(unread)}."]
    md = "\n".join(lines) + "\n"
    write_report(f"report-least-{a.quarter}", md, report)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
