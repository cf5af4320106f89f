"""`safetynet` — the command line that schedulers and scripts rely on (spec README)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.quarters import Quarter, parse_quarter_list


def run(
    landing: Path, out: Path, quarters: list[Quarter], *, echo=print, log_level: str = "WARNING"
) -> int:
    """Materialise the quarterly job through Dagster, in-process, quarter by quarter in order.

    Works without DAGSTER_HOME: the instance lives under `<out>/.dagster`. Refuses to start
    without the pseudonym key (`SAFETYNET_PSEUDONYM_KEY`). Returns 0 unless a quarter could not
    be processed at all (its registry or roster failed)."""
    import polars as pl
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from pipelines import pseudonym, quality, rules
    from pipelines.definitions import JOB_NAME, build_definitions
    from pipelines.operations import write_instance_config

    landing, out = landing.resolve(), out.resolve()
    try:
        key = pseudonym.key_from_environment()
    except pseudonym.KeyMissing as e:
        echo(f"safetynet: {e}")
        return 2
    if pseudonym.is_demo(key):
        echo("safetynet: running with the DEMO pseudonym key (synthetic data only)")
    if not landing.is_dir():
        echo(f"safetynet: landing folder {landing} does not exist")
        return 2
    home = out / ".dagster"
    home.mkdir(parents=True, exist_ok=True)
    # one run at a time for the UI's backfills (the CLI's own runs are in-process and in order)
    write_instance_config(home)
    instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    defs = build_definitions(landing, out)
    job = defs.resolve_job_def(JOB_NAME)
    unprocessed = []
    try:
        for quarter in quarters:
            q = str(quarter)
            if not (landing / q).is_dir():
                echo(f"{q}: no landing folder {landing / q}; every extract is MISSING")
            result = job.execute_in_process(
                partition_key=q,
                instance=instance,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            )
            results = quality.load_results(out, q)
            echo(f"\n== {q} ({'run succeeded' if result.success else 'run FAILED'}) ==")
            echo(quality.reconciliation_text(results))
            tables = rules.read_tables(out, q)
            if tables is not None:
                echo(rules.summary_text(*tables))
            cycle = out / q / "tables" / "warning_lifecycle.parquet"
            if cycle.is_file():
                counts = pl.read_parquet(cycle).group_by("status").len().sort("status")
                routed = sorted((out / q / "routed").glob("*/*.csv"))
                echo(
                    "lifecycle: "
                    + (", ".join(f"{s} {n:,}" for s, n in counts.iter_rows()) or "none")
                    + f"; {len(routed)} routed files under {out / q / 'routed'}"
                )
            core = quality.core_failures(results)
            if core or not result.success:
                unprocessed.append(q)
                why = ", ".join(core) or "a step failed; see the Dagster run log"
                echo(f"{q}: could not be processed: {why} did not pass")
    finally:
        instance.dispose()
    echo(f"\noutputs: {out}  (Data Docs: {out / 'data_docs' / 'index.html'})")
    return 1 if unprocessed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="safetynet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the quarterly job for each quarter, in order")
    p_run.add_argument("--landing", type=Path, required=True, help="landing folder (extracts.md)")
    p_run.add_argument("--out", type=Path, required=True, help="output folder")
    p_run.add_argument(
        "--quarters", required=True, help="e.g. 2025Q4,2026Q1 or a range 2025Q4..2026Q3"
    )
    p_run.add_argument(
        "--log-level", default="WARNING", help="Dagster console log level (default WARNING)"
    )
    p_gen = sub.add_parser("generate", help="write a synthetic Fujian landing folder (issue 3)")
    p_gen.add_argument("--out", type=Path, required=True, help="landing folder to write")
    p_gen.add_argument("--scale", default="county", choices=["test", "county", "city", "province"])
    p_gen.add_argument("--quarters", required=True, help="e.g. 2026Q3 or 2025Q4..2026Q3")
    p_gen.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "generate":
        from pipelines.generate import generate

        try:
            quarters = parse_quarter_list(args.quarters)
        except ValueError as e:
            parser.error(str(e))
        g = generate(args.out, args.scale, quarters, args.seed)
        for q, counts in g.rows.items():
            print(f"{q}: {sum(counts.values()):,} rows in {len(counts)} extracts")
        print(f"wrote {args.out} ({g.bytes / 1e6:.1f} MB) in {g.seconds:.1f} s")
        return 0
    if args.command == "run":
        try:
            quarters = parse_quarter_list(args.quarters)
        except ValueError as e:
            parser.error(str(e))
        return run(args.landing, args.out, quarters, log_level=args.log_level)
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
