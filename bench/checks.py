"""Where the gate's check evaluation goes: `python -m bench.checks [--rows N] [--seed S]`.

On the cached `mps/residents` CSV of `bench.gate` (generated first when absent), times each of
these as one streaming scan of the file, writing nothing (each result is reduced to a count):
reading every column as text; settling the duplicate keys (pass 1); the typed values alone; all
the checks' flags; and each check's flag alone (with the typed values it reads). The flags of
pass 2 are these; what pass 2 adds is writing the staging, quarantine and prepared rows.
Writes `.bench/report-checks-<rows>.{md,json}`.
"""

from __future__ import annotations

import argparse
import time

from bench import BENCH_DIR, write_report
from bench.gate import code_version, machine_info
from bench.residents import QUARTER, generate


def _timed(frame) -> float:
    t0 = time.perf_counter()
    frame.collect(engine="streaming")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.checks", description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    BENCH_DIR.mkdir(exist_ok=True)

    import polars as pl

    from pipelines.core.contracts import all_contracts
    from pipelines.core.quarters import Quarter
    from pipelines.gate import reader as ingest
    from pipelines.gate.checks import CheckContext, compile_checks, cross_row_context, evaluate

    gen = generate(BENCH_DIR, a.rows, a.seed)
    contract = all_contracts()[("mps", "residents")]
    read = ingest.read_file(gen.csv, contract, "mps", gen.landing)
    raw = read.frame
    rows: list[tuple[str, float]] = [("read every column as text", _timed(raw))]
    t0 = time.perf_counter()
    ctx, _ = cross_row_context(raw, contract, CheckContext(Quarter.parse(QUARTER), None))
    rows.append(("pass 1: settle the duplicate keys", time.perf_counter() - t0))
    checks = compile_checks(contract, ctx)
    source = evaluate(raw, contract, ctx, checks)
    typed = [n for n in source.collect_schema().names() if n.endswith("__v")]
    rows.append(("the typed values alone", _timed(source.select(pl.col(typed).null_count()))))
    flags = [c.reason for c in checks]
    rows.append(("every check's flag", _timed(source.select(pl.col(flags).sum()))))
    for c in checks:
        rows.append((f"`{c.reason}` alone", _timed(source.select(pl.col(c.reason).sum()))))

    report = {
        "rows": a.rows,
        "csv": str(gen.csv),
        "machine": machine_info(),
        "code": code_version(),
        "seconds": dict(rows),
    }
    lines = [
        f"# Check evaluation — mps/residents, {a.rows:,} rows (seed {a.seed})",
        "",
        f"commit {report['code']['commit']}; each line one streaming scan, writing nothing",
        "",
        "| what | seconds | rows/s |",
        "| --- | ---: | ---: |",
        *(f"| {name} | {s:.2f} | {a.rows / s:,.0f} |" for name, s in rows),
    ]
    md = "\n".join(lines) + "\n"
    write_report(f"report-checks-{a.rows}", md, report)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
