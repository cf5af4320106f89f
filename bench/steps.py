"""The measured steps, each run in its own process by `bench.measure.run_step`:

    python -m bench.steps floor '{"csv": ..., "events": ..., "result": ...}'
    python -m bench.steps gate  '{"landing": ..., "out": ..., "quarter": ..., ...}'

`floor`: DuckDB counting the file's rows, every column as text — the least any reader can do.
`imports`: what every run imports before it reads a row (`bench.least`).
`gate`: the real `pipelines.gate.extract.run_extract`, unchanged; its pieces (read and encoding
check, pass 1, pass 2 with its writes, weighing, reason counts) are wrapped only to record when
each starts and ends and the RSS at those moments.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench.measure import Tracer, proc_status


def floor(args: dict, tracer: Tracer) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    t0 = time.perf_counter()
    try:
        (count,) = tracer.span(
            "duckdb count(*)",
            lambda: con.execute(
                "select count(*) from read_csv(?, all_varchar = true)", [args["csv"]]
            ).fetchone(),
        )
        reader = "duckdb"
    except duckdb.Error:
        if not args.get("bytes_if_unreadable"):
            raise
        # a file DuckDB cannot read as UTF-8 CSV (GB18030): its lines counted in its bytes, a
        # lower floor still
        t0 = time.perf_counter()
        count, reader = _lines(Path(args["csv"])) - 1, "bytes"
    seconds = time.perf_counter() - t0
    return {"rows": count, "seconds": seconds, "threads": _duckdb_threads(con), "reader": reader}


def _lines(path: Path) -> int:
    n = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def imports(args: dict, tracer: Tracer) -> dict:
    """What every run imports before it reads a row: safetynet's definitions (Dagster, Polars,
    DuckDB, the contracts and rule catalogue checked) and Great Expectations."""
    t0 = time.perf_counter()
    from pipelines.orchestration import definitions

    tracer.span("definitions", definitions.check_packaged_data)
    tracer.span("great_expectations", __import__, "pipelines.gate.expectations")
    return {"seconds": time.perf_counter() - t0}


def _duckdb_threads(con) -> int:
    return int(con.execute("select current_setting('threads')").fetchone()[0])


def gate(args: dict, tracer: Tracer) -> dict:
    import polars as pl

    from pipelines.core.contracts import all_contracts
    from pipelines.core.quarters import Quarter
    from pipelines.gate import extract as gate_mod
    from pipelines.gate import reader as ingest

    contract = all_contracts()[("mps", "residents")]
    quarter = Quarter.parse(args["quarter"])

    tracer.wrap(ingest, "read_file", "read (ingest.read_file: encoding, hash, lazy scan)")
    tracer.wrap(ingest, "detect_encoding", "encoding check + sha256 (Python, 1 pass)")
    tracer.wrap(ingest, "_map_headers", "map headers + row_number")
    tracer.wrap(gate_mod, "_first_pass", "pass 1: count rows, settle duplicates (streaming)")
    tracer.wrap(gate_mod, "evaluate", "evaluate: build lazy plan")
    tracer.wrap(pl, "collect_all", "pass 2: check every row, write staging + quarantine")
    tracer.wrap(gate_mod, "_share_and_snapshot", "weigh the file (share, snapshot)")
    tracer.wrap(gate_mod, "_count_reasons", "count reasons + examples (from quarantine file)")

    t0 = time.perf_counter()
    checked = tracer.span(
        "run_extract",
        gate_mod.run_extract,
        contract,
        Path(args["landing"]),
        Path(args["out"]),
        quarter,
    )
    seconds = time.perf_counter() - t0
    r = checked.result
    # then Great Expectations, as the quarterly job's extract step runs it (batches of 1 M rows;
    # the Data Docs page is left to the accounting step, as in a run)
    ge: dict = {}
    source = checked.for_validation()
    if source is not None and r.rows_received:
        t1 = time.perf_counter()
        from pipelines.gate import expectations

        imported = time.perf_counter()
        validation = tracer.span(
            "Great Expectations validation",
            expectations.validate,
            Path(args["out"]),
            contract,
            quarter,
            source,
            checked.ctx,
            checked.checks,
            update_data_docs=False,
        )
        ge = {
            "ge_import_seconds": imported - t1,
            "ge_seconds": time.perf_counter() - imported,
            "ge_success": validation["success"],
            "ge_error": validation["error"],
            "ge_batches": validation["statistics"].get("batches"),
            "ge_prepared": checked.prepared is not None,
        }
    checked.close()
    outputs = {
        name: p.stat().st_size
        for name, p in (
            ("staging", r.staged(Path(args["out"]))),
            ("quarantine", r.quarantined(Path(args["out"]))),
        )
        if p
    }
    return {
        "seconds": seconds,
        "status": r.status,
        "failure_reasons": r.failure_reasons,
        "encoding": r.encoding,
        "rows_received": r.rows_received,
        "rows_accepted": r.rows_accepted,
        "rows_quarantined": r.rows_quarantined,
        "reason_rows": r.reason_rows,
        "output_bytes": outputs,
        "polars_threads": pl.thread_pool_size(),
        "untraced": tracer.missing,
        **ge,
    }


def generate(args: dict, tracer: Tracer) -> dict:
    """Stage `generate`: `safetynet generate` for one scale and quarter range."""
    from pipelines.core.quarters import parse_quarter_list
    from pipelines.generate import generate as write_landing

    quarters = parse_quarter_list(args["quarters"])
    g = tracer.span(
        "generate", write_landing, Path(args["landing"]), args["scale"], quarters, args["seed"]
    )
    rows = sum(n for per_quarter in g.rows.values() for n in per_quarter.values())
    return {"seconds": g.seconds, "rows": rows, "bytes": g.bytes}


def quarter(args: dict, tracer: Tracer) -> dict:
    """Stage `quarter`: the quarterly Dagster job in-process (`safetynet run`), every quarter."""
    import os

    from pipelines.core import pseudonym
    from pipelines.core.quarters import parse_quarter_list
    from pipelines.gate import accounting as quality
    from pipelines.orchestration import cli
    from pipelines.orchestration.resources import KEY_ENV

    os.environ.setdefault(KEY_ENV, pseudonym.DEMO_KEY)  # synthetic data only
    quarters = parse_quarter_list(args["quarters"])
    _trace_stages(tracer)
    t0 = time.perf_counter()
    code = tracer.span(
        "safetynet run",
        cli.run,
        Path(args["landing"]),
        Path(args["out"]),
        quarters,
        echo=lambda *a: None,
    )
    seconds = time.perf_counter() - t0
    results = [r for q in quarters for r in quality.load_results(Path(args["out"]), str(q))]
    return {
        "seconds": seconds,
        "exit_code": code,
        "rows": sum(r.rows_received for r in results),
        "rows_accepted": sum(r.rows_accepted for r in results),
        "rows_quarantined": sum(r.rows_quarantined for r in results),
        "extracts_passed": sum(r.status == "PASSED" for r in results),
        "extracts": len(results),
    }


def _trace_stages(tracer: Tracer) -> None:
    """Trace the stage functions the quarter's assets call, each call labelled `<function>
    <quarter>[ <department>/<extract>]` (`bench.stages.where_time_went` sums them by function
    and quarter): an extract step's whole work (`gate_extract`: the gate, then Great
    Expectations and the saved result) and the gate's part of it (`run_extract`: read, check,
    write), the feedback files, the accounting with the quarter's Data Docs (`account`), the
    policy step, and publishing with two of its parts: the lifecycle and routed files
    (`publish`) and the warehouse's load (`load_quarter`)."""
    import inspect

    from pipelines.gate import stage as gate_stage
    from pipelines.policy import stage as policy_stage
    from pipelines.publish import routed, warehouse
    from pipelines.publish import stage as publish_stage

    def label(owner, attr: str):
        signature = inspect.signature(getattr(owner, attr))

        def name(*a, **k) -> str:
            bound = signature.bind(*a, **k).arguments
            where = ""
            if "contract" in bound:
                dept = bound.get("department") or bound["contract"].department
                where = f" {dept}/{bound['contract'].extract}"
            return f"{attr} {bound['quarter']}{where}"

        return name

    for owner, attr in (
        (gate_stage, "gate_extract"),
        (gate_stage, "run_extract"),
        (gate_stage, "gate_feedback"),
        (gate_stage, "account"),
        (policy_stage, "evaluate_quarter"),
        (publish_stage, "publish_quarter"),
        (routed, "publish"),
        (warehouse, "load_quarter"),
    ):
        tracer.wrap(owner, attr, label(owner, attr))


def policy(args: dict, tracer: Tracer) -> dict:
    """Stage `policy`: facts and rules (pipelines.policy.evaluate) for the last quarter, on the
    staging tables the `quarter` stage left — the comparison alone, in its own process, on the
    engine `args["engine"]` (DuckDB unless said) — then the facts saved as the policy step
    saves them (`save_facts_seconds`, apart; none on Spark). For Spark, the session is started
    first (its start is reported apart) and the JVM's own peak RSS is read from /proc before the
    step ends: the step's peak RSS is then the Python process's plus the JVM's (an upper bound
    of the two together)."""
    import os

    import pyarrow.parquet as pq

    from pipelines.core import pseudonym
    from pipelines.core.layout import Outputs
    from pipelines.core.quarters import parse_quarter_list
    from pipelines.orchestration.resources import KEY_ENV, Settings
    from pipelines.policy import evaluate as rules
    from pipelines.policy import facts, saved
    from pipelines.policy.engine import open_engine

    engine_name = args.get("engine", "duckdb")
    q = parse_quarter_list(args["quarters"])[-1]
    out = Path(args["out"])
    sources = facts.Sources.from_out(out, q)
    rows_in = sum(pq.read_metadata(p).num_rows for p in sources.staging.values())
    key = os.environ.get(KEY_ENV, pseudonym.DEMO_KEY).encode()
    memory = Settings.from_environment().duckdb_memory
    t0 = time.perf_counter()
    engine = tracer.span(
        "open engine", open_engine, engine_name, Outputs(out).spill(engine_name), memory
    )
    opened = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluation = tracer.span("facts + rules", rules.evaluate_sources, sources, key, engine=engine)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()  # as the policy step does after writing the warnings
    kept = tracer.span("save facts", saved.save, engine, out, sources, evaluation, key)
    save_seconds = time.perf_counter() - t0
    jvm = {}
    if engine_name == "spark":
        pid = engine.spark.sparkContext._gateway.proc.pid  # the JVM pyspark started
        jvm = {"jvm_vm_hwm": proc_status(pid).get("VmHWM")}
    engine.close()
    return {
        "seconds": seconds,
        "rows": rows_in,
        "engine": engine_name,
        "engine_start_seconds": round(opened, 2),
        "quarter": str(q),
        "window_quarters_loaded": len(sources.loaded),
        "warnings": evaluation.warnings.height,
        "rules_evaluated": int((evaluation.rule_runs["status"] == "EVALUATED").sum()),
        "model_seconds": evaluation.seconds,
        "save_facts_seconds": round(save_seconds, 2) if kept else None,
        "memory_limit": memory,
        **jvm,
    }


def policy_spark(args: dict, tracer: Tracer) -> dict:
    """Stage `policy_spark`: the same on Spark (local[*])."""
    return policy({**args, "engine": "spark"}, tracer)


def whatif(args: dict, tracer: Tracer) -> dict:
    """Stage `whatif`: the shipped reform (`rules/reforms/dibao_plus_5pct.yaml`, its values as
    in effect the day after the quarter) on the last quarter `quarter` left, as `safetynet
    whatif` runs it: the baseline (the quarter's saved evaluation, while it holds), the reform
    evaluated on its facts, compared, written (folder, page, warehouse tables)."""
    import datetime as dt
    import os

    import pyarrow.parquet as pq

    from pipelines.core import pseudonym
    from pipelines.core.quarters import parse_quarter_list
    from pipelines.orchestration.resources import KEY_ENV
    from pipelines.policy import facts
    from pipelines.policy import whatif as what
    from pipelines.publish import warehouse
    from pipelines.publish.whatif_page import write_whatif_page

    q = parse_quarter_list(args["quarters"])[-1]
    out = Path(args["out"])
    rows_in = sum(
        pq.read_metadata(p).num_rows for p in facts.Sources.from_out(out, q).staging.values()
    )
    key = os.environ.get(KEY_ENV, pseudonym.DEMO_KEY).encode()
    reform = what.load_reform(
        Path(__file__).resolve().parent.parent / "rules" / "reforms" / "dibao_plus_5pct.yaml"
    )
    t0 = time.perf_counter()
    result = tracer.span(
        "baseline + reform", what.run, out, q, reform, key, as_of=q.end + dt.timedelta(days=1)
    )
    tracer.span("write", what.write, out, result)
    tracer.span("page", write_whatif_page, out, result.name)
    tracer.span("warehouse", warehouse.load_whatif, out, result.name)
    seconds = time.perf_counter() - t0
    c = result.changes
    return {
        "seconds": seconds,
        "rows": rows_in,
        "parts": result.seconds,
        "baseline": result.baseline_from,
        "newly_flagged": int(c["newly_flagged"].sum()),
        "no_longer_flagged": int(c["no_longer_flagged"].sum()),
    }


STEPS = {
    "floor": floor,
    "imports": imports,
    "gate": gate,
    "generate": generate,
    "quarter": quarter,
    "policy": policy,
    "policy_spark": policy_spark,
    "whatif": whatif,
}


def main(argv: list[str]) -> int:
    step, raw = argv
    args = json.loads(raw)
    tracer = Tracer(Path(args["events"]))
    out = STEPS[step](args, tracer)
    status = proc_status()
    out |= {"vm_hwm": status.get("VmHWM"), "vm_rss_end": status.get("VmRSS")}
    Path(args["result"]).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
