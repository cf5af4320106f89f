"""`make bench`: the contract gate on a province-sized `mps/residents` CSV, beside a floor.

    python -m bench.gate [--rows 10000000] [--seed 7] [--keep] [--rss-cap-gb 20]

1. generate (or reuse from `.bench/`) a realistic residents CSV of `--rows` rows;
2. floor: DuckDB counts its rows reading every column as text, in a fresh process;
3. gate: `pipelines.gate.extract.run_extract` on it for 2026Q3, in a fresh process, writing to a
   temporary output folder (deleted afterwards unless `--keep`), then its Great Expectations
   validation in the same process, as the quarterly job's extract step runs it;
and prints wall time, rows/s and peak RSS of each, the gate's accounting checked against the
rows the generator planted, and where the gate's time and memory went. The report is written to
`.bench/report-gate.{md,json}` (and `report-gate-<rows>.{md,json}`).

Targets (the issue): the gate within 5× the floor and under 6 GB peak RSS; 42 M rows must finish
on a 2-core, 24 GB machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench import BENCH_DIR, write_report
from bench.measure import GIB, PROJECT_ROOT, StepRun, default_cap, mem_info, run_step
from bench.residents import BYTES_PER_ROW, QUARTER, cache_dir, generate

TARGET_RATIO = 5.0
TARGET_RSS = 6 * 10**9  # "6 GB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gate", description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the gate's output folder")
    ap.add_argument(
        "--rss-cap-gb",
        type=float,
        default=None,
        help="kill a step whose RSS passes this (default: min(20, available - 2) GiB)",
    )
    a = ap.parse_args(argv)
    BENCH_DIR.mkdir(exist_ok=True)

    machine = machine_info()
    print(
        f"machine: {machine['cpus']} CPUs, {machine['memory_gib']:.1f} GiB RAM, "
        f"{machine['cpu_model']}"
    )
    need = a.rows * BYTES_PER_ROW * 1.3  # the CSV, plus the gate's Parquet outputs
    if (
        not cache_dir(BENCH_DIR, a.rows, a.seed).is_dir()
        and shutil.disk_usage(BENCH_DIR).free < need
    ):
        print(f"not enough disk under {BENCH_DIR}: about {need / 1e9:.1f} GB needed")
        return 2
    print(f"generating {a.rows:,} residents rows (seed {a.seed}) …", flush=True)
    gen = generate(BENCH_DIR, a.rows, a.seed, log=_log)
    how = "cached, made in" if gen.cached else "made in"
    print(f"  {gen.csv} — {gen.bytes / 1e9:.2f} GB, {how} {gen.seconds:.1f} s")

    cap = int(a.rss_cap_gb * GIB) if a.rss_cap_gb else default_cap()
    code = code_version()
    work = Path(tempfile.mkdtemp(prefix=f"run-{a.rows}-", dir=BENCH_DIR))
    out = work / "out"
    try:
        print("floor: DuckDB count(*) …", flush=True)
        floor = run_step("floor", {"csv": str(gen.csv)}, work, cap_bytes=cap, log=_log)
        _print_step(floor)
        print("gate: pipelines.gate.extract.run_extract …", flush=True)
        gate = run_step(
            "gate",
            {"landing": str(gen.landing), "out": str(out), "quarter": QUARTER},
            work,
            cap_bytes=cap,
            log=_log,
        )
        _print_step(gate)
        report = build_report(a, machine, gen, floor, gate, cap)
        report["code"] = code
    finally:
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    md = render_markdown(report)
    for name in ("report-gate", f"report-gate-{a.rows}"):
        write_report(name, md, report)
    print()
    print(md)
    print(f"report: {BENCH_DIR / 'report-gate.md'} and .json")
    return 0 if report["gate"]["completed"] and report["checks"]["accounting_ok"] else 1


def _log(msg: str) -> None:
    print(msg, flush=True)


def _print_step(run: StepRun) -> None:
    inner = run.result["seconds"] if run.result else None
    state = "ok" if run.ok else ("killed at RSS cap" if run.killed_at_cap else "FAILED")
    inner_txt = f"{inner:.1f} s measured inside" if inner is not None else "no result"
    print(
        f"  {state}: {inner_txt}, {run.wall_seconds:.1f} s with start-up, "
        f"peak RSS {run.peak_rss / GIB:.2f} GiB",
        flush=True,
    )
    if not run.ok and run.stderr_tail:
        print("  stderr (tail):\n" + "\n".join("    " + x for x in run.stderr_tail.splitlines()))


def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import duckdb
    import polars as pl

    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": mem_info()["MemTotal"] / GIB,
        "memory_available_gib": mem_info()["MemAvailable"] / GIB,
        "python": platform.python_version(),
        "polars": pl.__version__,
        "duckdb": duckdb.__version__,
        "disk_free_gib": shutil.disk_usage(BENCH_DIR).free / GIB,
    }


def code_version() -> dict:
    """Which gate was measured: the commit, and a digest of pipelines/**/*.py as they are on disk
    (other people edit the working tree while benchmarks run)."""
    h = hashlib.sha256()
    for p in sorted((PROJECT_ROOT / "pipelines").rglob("*.py")):
        h.update(p.relative_to(PROJECT_ROOT).as_posix().encode() + b"\0" + p.read_bytes())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "pipelines"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "?", ""
    digest = h.hexdigest()[:12]
    return {"commit": commit, "pipelines_modified": bool(dirty), "pipelines_digest": digest}


def build_report(a, machine: dict, gen, floor: StepRun, gate: StepRun, cap: int) -> dict:
    fr, gr = floor.result or {}, gate.result or {}
    floor_s = fr.get("seconds")
    gate_s = gr.get("seconds")
    received = gr.get("rows_received")
    accepted = gr.get("rows_accepted")
    quarantined = gr.get("rows_quarantined")
    accounting_ok = (
        received is not None
        and accepted + quarantined == received
        and received == gen.rows
        and fr.get("rows") in (None, gen.rows)
    )
    if gate.ok:
        assert accepted + quarantined == received, "received != accepted + quarantined"
    reasons_ok = gr.get("reason_rows") == gen.expected_reason_rows if gate.ok else None
    phases = _phase_rows(gate)
    return {
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine,
        "rows": a.rows,
        "seed": a.seed,
        "rss_cap_bytes": cap,
        "generation": {
            "csv": str(gen.csv),
            "bytes": gen.bytes,
            "seconds": gen.seconds,
            "cached": gen.cached,
            "planted": gen.planted,
            "expected_quarantined": gen.expected_quarantined,
        },
        "floor": _step_dict(floor) | {"rows_counted": fr.get("rows")},
        "gate": _step_dict(gate)
        | {
            "completed": gate.ok,
            "rows_per_second": received / gate_s if gate_s else None,
            "ge_seconds": gr.get("ge_seconds"),
            "ge_import_seconds": gr.get("ge_import_seconds"),
            "ge_success": gr.get("ge_success"),
            "ge_error": gr.get("ge_error"),
            "ge_batches": gr.get("ge_batches"),
            "ge_prepared": gr.get("ge_prepared"),
            "with_ge_rows_per_second": (
                received / (gate_s + gr["ge_seconds"]) if gate_s and gr.get("ge_seconds") else None
            ),
            "ratio_to_floor": gate_s / floor_s if gate_s and floor_s else None,
            "status": gr.get("status"),
            "failure_reasons": gr.get("failure_reasons"),
            "rows_received": received,
            "rows_accepted": accepted,
            "rows_quarantined": quarantined,
            "reason_rows": gr.get("reason_rows"),
            "output_bytes": gr.get("output_bytes"),
            "phases": phases,
        },
        "checks": {
            "accounting_ok": accounting_ok,
            "reasons_match_planted": reasons_ok,
            "expected_reason_rows": gen.expected_reason_rows,
            "within_5x_floor": (gate_s / floor_s <= TARGET_RATIO) if gate_s and floor_s else False,
            "under_6gb": gate.ok and gate.peak_rss < TARGET_RSS,
        },
    }


def _step_dict(run: StepRun) -> dict:
    return {
        "seconds": (run.result or {}).get("seconds"),
        "wall_seconds_with_startup": run.wall_seconds,
        "peak_rss_bytes": run.peak_rss,
        "cpu_seconds": run.cpu_seconds,
        "load_average_before_after": [run.load_before, run.load_after],
        "returncode": run.returncode,
        "killed_at_cap": run.killed_at_cap,
        "stderr_tail": None if run.ok else run.stderr_tail,
    }


def _phase_rows(run: StepRun) -> list[dict]:
    end_all = run.ended_at
    rows = []
    for i, p in enumerate(run.phases):
        total = p.seconds(end_all)
        children = 0.0
        for q in run.phases[i + 1 :]:
            if q.depth <= p.depth:
                break
            if q.depth == p.depth + 1:
                children += q.seconds(end_all)
        row = asdict(p)
        row |= {"seconds": total, "self_seconds": total - children, "finished": p.end is not None}
        rows.append(row)
    return rows


def _gib(n: int | None) -> str:
    return "–" if n is None else f"{n / GIB:.2f} GiB"


def _s(x: float | None) -> str:
    return "–" if x is None else f"{x:,.1f} s"


def render_markdown(r: dict) -> str:
    m, g, f, gen, chk = r["machine"], r["gate"], r["floor"], r["generation"], r["checks"]
    ok = "✅" if g["completed"] else "❌"
    ratio = g["ratio_to_floor"]
    lines = [
        f"# Gate benchmark — mps/residents, {r['rows']:,} rows (seed {r['seed']})",
        "",
        f"{r['when']} · {m['cpus']} CPUs ({m['cpu_model']}) · {m['memory_gib']:.1f} GiB RAM · "
        f"Python {m['python']}, polars {m['polars']}, duckdb {m['duckdb']}",
        "",
        f"Gate code: commit {r['code']['commit']}"
        + (" with pipelines/ modified" if r["code"]["pipelines_modified"] else "")
        + f" (pipelines/*.py digest {r['code']['pipelines_digest']})",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| CSV | {gen['bytes'] / 1e9:.2f} GB, {r['rows']:,} rows, UTF-8 |",
        f"| generation | {_s(gen['seconds'])}{' (cached file)' if gen['cached'] else ''} |",
        f"| floor: DuckDB `count(*)`, all_varchar | {_s(f['seconds'])}, "
        f"peak RSS {_gib(f['peak_rss_bytes'])} |",
        f"| gate: `run_extract` {ok} | {_s(g['seconds'])}"
        + (
            f" (the whole step: {_s(g['wall_seconds_with_startup'])} with process start-up and GE)"
            if g["seconds"]
            else f" — did not finish (return code {g['returncode']}"
            f"{', killed at the RSS cap' if g['killed_at_cap'] else ''}, "
            f"after {_s(g['wall_seconds_with_startup'])})"
        )
        + " |",
        f"| gate CPU time (user + sys) | {_s(g['cpu_seconds'])} "
        f"(floor {_s(f['cpu_seconds'])}); 1-min load before/after the gate "
        f"{g['load_average_before_after'][0]:.1f}/{g['load_average_before_after'][1]:.1f} "
        f"on {m['cpus']} CPUs |",
        f"| gate rows/s | {g['rows_per_second']:,.0f} |"
        if g["rows_per_second"]
        else "| gate rows/s | – |",
        (
            f"| then Great Expectations (`expectations.validate`, "
            f"{'the rows the gate prepared' if g['ge_prepared'] else 'the file read again'}, "
            f"{g['ge_batches']} batches) | {_s(g['ge_seconds'])} (+ {_s(g['ge_import_seconds'])} "
            f"to import it); {'success' if g['ge_success'] else 'failed expectations'}"
            f"{'; error: ' + g['ge_error'] if g['ge_error'] else ''} |"
        )
        if g.get("ge_seconds") is not None
        else "| then Great Expectations | – |",
        f"| gate + Great Expectations rows/s (target ≥ 1,000,000) | "
        f"{g['with_ge_rows_per_second']:,.0f} "
        f"{'✅' if g['with_ge_rows_per_second'] >= 1_000_000 else '❌'} |"
        if g.get("with_ge_rows_per_second")
        else "| gate + Great Expectations rows/s | – |",
        f"| gate ÷ floor | {ratio:.1f}× (target ≤ {TARGET_RATIO:.0f}×) "
        f"{'✅' if chk['within_5x_floor'] else '❌'} |"
        if ratio
        else "| gate ÷ floor | – |",
        f"| gate peak RSS | {_gib(g['peak_rss_bytes'])} = {g['peak_rss_bytes'] / 1e9:.2f} GB "
        f"(target < 6 GB) {'✅' if chk['under_6gb'] else '❌'} |",
        f"| rows received / accepted / quarantined | {_n(g['rows_received'])} / "
        f"{_n(g['rows_accepted'])} / {_n(g['rows_quarantined'])} (status {g['status']}; "
        f"planted bad rows imply {gen['expected_quarantined']:,} quarantined) |",
        f"| accounting received = accepted + quarantined = rows | "
        f"{'✅' if chk['accounting_ok'] else '❌'} |",
        f"| quarantine reasons = the planted ones, row for row | "
        f"{_yes(chk['reasons_match_planted'])} |",
    ]
    if g.get("output_bytes"):
        sizes = ", ".join(f"{k} {v / 1e6:,.0f} MB" for k, v in g["output_bytes"].items())
        lines.append(f"| gate outputs (Parquet, zstd) | {sizes} |")
    lines += [
        "",
        "## Where the gate's time and memory go",
        "",
        "Phases are the gate's own functions, traced in the measured run (nested phases are "
        "indented; *self* excludes nested phases). RSS is sampled every 0.1 s from outside.",
        "",
        "| phase | seconds | self | RSS at start | peak RSS inside | RSS at end |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in g["phases"]:
        name = "&nbsp;&nbsp;&nbsp;" * p["depth"] + ("· " if p["depth"] else "") + p["name"]
        tail = "" if p["finished"] else " (never finished)"
        lines.append(
            f"| {name}{tail} | {p['seconds']:,.1f} | {p['self_seconds']:,.1f} | "
            f"{_gib(p['rss_start'])} | {_gib(p['rss_peak'])} | {_gib(p['rss_end'])} |"
        )
    if g.get("stderr_tail"):
        lines += ["", "Gate stderr (tail):", "", "```", g["stderr_tail"].strip()[-2000:], "```"]
    return "\n".join(lines) + "\n"


def _n(x: int | None) -> str:
    return "–" if x is None else f"{x:,}"


def _yes(x: bool | None) -> str:
    return "–" if x is None else ("✅" if x else "❌")


if __name__ == "__main__":
    sys.exit(main())
