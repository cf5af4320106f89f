"""`safetynet` — the command line that schedulers and scripts rely on (spec README)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import errno
import fcntl
import os
import sys
from pathlib import Path
from typing import IO

from pipelines.core.quarters import Quarter, parse_quarter_list

PARTITION_TAG = "dagster/partition"  # the tag Dagster reads a run's partition from


def run(
    landing: Path,
    out: Path,
    quarters: list[Quarter],
    *,
    echo=print,
    log_level: str = "WARNING",
    engine: str | None = None,
    max_concurrent: int | None = None,
) -> int:
    """Materialise the quarterly job through Dagster, in-process, quarter by quarter in order.

    Works without DAGSTER_HOME: the instance lives under `<out>/.dagster`. Refuses to start
    without the pseudonym key (`SAFETYNET_PSEUDONYM_KEY`). Returns 0 unless a quarter could not
    be processed at all (its registry or roster failed). `engine`: the policy engine (`duckdb`
    or `spark`), else `SAFETYNET_ENGINE`'s, else DuckDB. `max_concurrent` (else
    `SAFETYNET_MAX_CONCURRENT`, else 1): more than 1 runs a quarter's steps on Dagster's
    multiprocess executor (`definitions.job_executor`)."""
    from dagster import DagsterInstance, build_reconstructable_job, execute_job

    from pipelines.core import pseudonym
    from pipelines.core.contracts import ContractError
    from pipelines.core.layout import Landing, Outputs
    from pipelines.core.parameters import ParameterError
    from pipelines.gate import accounting
    from pipelines.orchestration.definitions import JOB_NAME, build_definitions, quarterly_job
    from pipelines.orchestration.instance import write_instance_config
    from pipelines.orchestration.resources import Settings, key_from_environment
    from pipelines.policy import evaluate
    from pipelines.policy.catalogue import CatalogueError
    from pipelines.publish.stage import lifecycle_text

    landing, out = landing.resolve(), out.resolve()
    try:
        key = key_from_environment()
        settings = dataclasses.replace(Settings.from_environment(), landing=landing, out=out)
        if engine is not None:
            settings = dataclasses.replace(settings, engine=engine)
        if max_concurrent is not None:
            settings = dataclasses.replace(settings, max_concurrent=max_concurrent)
    except (pseudonym.KeyMissing, ValueError) as e:
        echo(f"safetynet: {e}")
        return 2
    if pseudonym.is_demo(key):
        echo("safetynet: running with the DEMO pseudonym key (synthetic data only)")
    if not landing.is_dir():
        echo(f"safetynet: landing folder {landing} does not exist")
        return 2
    try:
        defs = build_definitions(landing, out, settings)
    except (ContractError, ParameterError, CatalogueError, ValueError) as e:
        echo(f"safetynet: {e}")
        return 2
    outputs = Outputs(out)
    try:
        lock = _hold_run_lock(outputs)
    except OSError as e:  # not a folder, not writable, a full disk
        echo(f"safetynet: cannot write in --out {out}: {e.strerror or e}")
        return 2
    if isinstance(lock, str):
        echo(
            f"safetynet: {out} is in use by another run ({lock}); refused, so that the two do "
            "not interleave. Wait for it to end, or give another --out"
        )
        return 2
    where = "before the first quarter"
    try:
        home = outputs.dagster_home
        home.mkdir(parents=True, exist_ok=True)
        # one run at a time for the UI's backfills (the CLI's own runs are in-process and in order)
        write_instance_config(home)
        instance = DagsterInstance.from_config(str(home))
        job = defs.resolve_job_def(JOB_NAME)
        unprocessed = []
        try:
            for quarter in quarters:
                q = where = str(quarter)
                arrived = Landing(landing).quarter(q)
                if not arrived.is_dir():
                    echo(f"{q}: no landing folder {arrived}; every extract is MISSING")
                run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
                if settings.max_concurrent > 1:  # steps in processes of their own
                    # the settings travel as the job's arguments, not in the environment
                    job_in_steps = build_reconstructable_job(
                        quarterly_job.__module__,
                        quarterly_job.__name__,
                        reconstructable_kwargs={
                            **dataclasses.asdict(settings),
                            "landing": str(settings.landing),
                            "out": str(settings.out),
                        },
                    )
                    with execute_job(
                        job_in_steps,
                        instance=instance,
                        tags={PARTITION_TAG: q},
                        raise_on_error=False,
                        run_config=run_config,
                    ) as result:
                        succeeded = result.success
                        failures = _step_failures(result)
                else:
                    result = job.execute_in_process(
                        partition_key=q,
                        instance=instance,
                        raise_on_error=False,
                        run_config=run_config,
                    )
                    succeeded = result.success
                    failures = _step_failures(result)
                results = accounting.load_results(out, q)
                echo(f"\n== {q} ({'run succeeded' if succeeded else 'run FAILED'}) ==")
                echo(accounting.reconciliation_text(results))
                tables = evaluate.read_tables(out, q)
                if tables is not None:
                    echo(evaluate.summary_text(*tables))
                cycle = lifecycle_text(out, quarter)
                if cycle is not None:
                    echo(cycle)
                for step, message in failures:
                    echo(f"{q}: step {step} failed: {message}")
                core = accounting.core_failures(results)
                if core or not succeeded:
                    unprocessed.append(q)
                    why = ", ".join(core) or "a step failed; see the Dagster run log"
                    echo(f"{q}: could not be processed: {why} did not pass")
        finally:
            instance.dispose()
        echo(f"\noutputs: {out}  (Data Docs: {outputs.data_docs_index})")
        return 1 if unprocessed else 0
    except Exception as e:  # noqa: BLE001 - one line, never a traceback (a full disk, above all)
        echo(f"safetynet: {where}: {_one_line(e, out)}; what was published before stays as it was")
        return 1
    finally:
        lock.close()  # the lock goes with it (and with the process, if it is killed)


def _step_failures(result) -> list[tuple[str, str]]:
    """Each failed step's key and the first line of its error, identity numbers masked."""
    from pipelines.core import idnumbers

    found = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        text = idnumbers.scrub(error.message) if error is not None else "no message"
        found.append((event.step_key or "?", text.strip().splitlines()[0] if text.strip() else "?"))
    return found


_FULL = ("disk I/O error", "database or disk is full", "No space left on device")


def _one_line(e: BaseException, out: Path) -> str:
    """What went wrong, in one line: a full (or failing) disk named as such, whichever library
    met it first; anything else by its type and first line, identity numbers masked."""
    from pipelines.core import idnumbers

    seen: BaseException | None = e
    while seen is not None:
        if (isinstance(seen, OSError) and seen.errno == errno.ENOSPC) or any(
            f in str(seen) for f in _FULL
        ):
            first = idnumbers.scrub(str(seen)).strip().splitlines()
            why = first[0] if first else type(seen).__name__
            return f"no space left on the disk of --out {out} (or it failed writing): {why}"
        seen = seen.__cause__ or seen.__context__
    lines = idnumbers.scrub(str(e)).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else 'no message'}"


def whatif(
    out: Path,
    quarter: str,
    reform: Path,
    *,
    name: str | None = None,
    as_of: dt.date | None = None,
    echo=print,
) -> int:
    """`safetynet whatif`: the reform and the baseline on a published quarter, written to
    `<out>/whatif/<name>/` and summarised; 2 for a reform, a quarter or a key that will not do."""
    from pipelines.core import pseudonym
    from pipelines.core.layout import Outputs
    from pipelines.orchestration.resources import key_from_environment
    from pipelines.policy import whatif as what

    try:
        key = key_from_environment()
        q = Quarter.parse(quarter)
        plan = what.load_reform(reform)
        Outputs(out).whatif(name or plan.name)  # a name that can be a folder
    except (pseudonym.KeyMissing, what.ReformError, ValueError) as e:
        echo(f"safetynet: {e}")
        return 2
    if not out.is_dir():
        echo(f"safetynet: --out {out} does not exist: run the quarter first")
        return 2
    lock = _hold_run_lock(Outputs(out))  # it writes the warehouse: one writer at a time
    if isinstance(lock, str):
        echo(f"safetynet: {out} is in use by another run ({lock}); try again when it has ended")
        return 2
    try:
        from pipelines.publish import warehouse
        from pipelines.publish.whatif_page import write_whatif_page

        try:
            result = what.run(out.resolve(), q, plan, key, as_of=as_of, name=name)
        except what.NotPublished as e:
            echo(f"safetynet: {e}")
            return 2
        folder = what.write(out.resolve(), result)
        page = write_whatif_page(out.resolve(), result.name)
        warehouse.load_whatif(out.resolve(), result.name)
    finally:
        lock.close()
    echo(what.summary_text(result))
    echo(f"written: {folder} (page: {page.name}; warehouse: whatif_runs, whatif_changes)")
    return 0


def _hold_run_lock(outputs) -> IO[str] | str:
    """`<out>/.run.lock`, held (an exclusive `flock`) for as long as the returned file is open:
    the kernel releases it when the process ends, killed or not, so a dead run never blocks
    the next. If another process holds it: who, as that process wrote it."""
    path = outputs.run_lock
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "a process that has not said which"
        lock.close()
        return holder
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()} since {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC\n")
    lock.flush()
    return lock


def _concurrency(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 256")
    return value


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
        "--engine",
        choices=["duckdb", "spark"],
        help="the engine of the facts, the rules and the lifecycle's comparison (default "
        "duckdb, or SAFETYNET_ENGINE); spark needs Java 17",
    )
    p_run.add_argument(
        "--max-concurrent",
        type=_concurrency,
        help="steps at once, each in a process of its own (default 1, or "
        "SAFETYNET_MAX_CONCURRENT): the extracts gated in parallel",
    )
    p_run.add_argument(
        "--log-level", default="WARNING", help="Dagster console log level (default WARNING)"
    )
    p_gen = sub.add_parser("generate", help="write a synthetic Fujian landing folder")
    p_gen.add_argument("--out", type=Path, required=True, help="landing folder to write")
    p_gen.add_argument("--scale", default="county", choices=["test", "county", "city", "province"])
    p_gen.add_argument("--quarters", required=True, help="e.g. 2026Q3 or 2025Q4..2026Q3")
    p_gen.add_argument("--seed", type=int, default=1)
    p_what = sub.add_parser(
        "whatif", help="a policy reform evaluated on a published quarter (docs/policy.md)"
    )
    p_what.add_argument("--out", type=Path, required=True, help="the output folder of the runs")
    p_what.add_argument("--quarter", required=True, help="a published quarter, e.g. 2026Q3")
    p_what.add_argument("--reform", type=Path, required=True, help="the reform's YAML file")
    p_what.add_argument("--name", help="the comparison's name (default: the reform's)")
    p_what.add_argument(
        "--as-of", type=dt.date.fromisoformat, help="the reform's values in effect on this date"
    )
    args = parser.parse_args(argv)
    if args.command == "whatif":
        return whatif(args.out, args.quarter, args.reform, name=args.name, as_of=args.as_of)
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
        return run(
            args.landing,
            args.out,
            quarters,
            log_level=args.log_level,
            engine=args.engine,
            max_concurrent=args.max_concurrent,
        )
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
