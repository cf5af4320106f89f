"""Faults (issue 13, §3): a quarter killed (`SIGKILL`) at each stage, two runs on one output
folder, a full disk, an output folder that cannot be written.

The input is a generated `test` quarter pair (2026Q2, 2026Q3) with the registry and the roster
only (the other extracts MISSING), which keeps each of the many `safetynet run`s short and still
evaluates rules, routes warnings and fills the warehouse. A run is killed by arming a crash
point (`pipelines/core/faults.py`): the process SIGKILLs itself exactly there, as a scheduler's
`kill -9` would, with no handler or `finally` run.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.core.faults import CRASH_ENV, POINTS
from pipelines.core.layout import Outputs
from pipelines.core.pseudonym import DEMO_KEY
from pipelines.core.quarters import Quarter
from pipelines.generate import generate
from pipelines.orchestration import cli

Q2, Q3 = Quarter(2026, 2), Quarter(2026, 3)


# Each run is a process of its own, forked from a server that has imported everything already
# (a fresh interpreter would spend 4 s of each run importing Great Expectations and Dagster).
# The server imports but runs nothing, so it has no threads a fork could catch mid-lock.
_PRELOAD = [
    "pipelines.orchestration.cli",
    "pipelines.orchestration.definitions",
    "pipelines.gate.expectations",
    "pipelines.policy.stage",
    "pipelines.publish.stage",
    "tests.test_faults",
]
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(_PRELOAD)


def _child(
    landing: Path, out: Path, quarter: Quarter, crash: str | None, log: Path, full: bool
) -> None:
    from pipelines.core import faults

    os.environ["SAFETYNET_PSEUDONYM_KEY"] = DEMO_KEY
    os.environ[CRASH_ENV] = crash or ""
    importlib.reload(faults)  # the same module object: `crash_point` everywhere reads it
    if full:  # the routed files' writer meets a full disk

        def no_space(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        pl.DataFrame.write_csv = no_space
    said = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for stream in (1, 2):  # what the run prints, and what a library writes to the terminal
        os.dup2(said, stream)
    os.close(said)
    code = cli.run(landing, out, [quarter], echo=print)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class _Run:
    """`safetynet run` of one quarter in a process of its own, `crash` armed."""

    def __init__(
        self,
        landing: Path,
        out: Path,
        quarter: Quarter,
        crash: str | None = None,
        *,
        full: bool = False,
    ):
        # beside the landing folder: never on the disk the test fills
        self.log = landing.with_name(f"run.{quarter}.{crash or 'whole'}.{time.time_ns()}.log")
        args = (landing, out, quarter, crash, self.log, full)
        self.process = _FORKS.Process(target=_child, args=args)
        self.process.start()
        self.pid = self.process.pid

    def poll(self) -> int | None:
        return self.process.exitcode

    def finish(self) -> tuple[int, str]:
        self.process.join(timeout=600)
        assert self.process.exitcode is not None, "the run did not end in 10 minutes"
        said = self.log.read_text() if self.log.is_file() else ""
        return self.process.exitcode, said


def _run(
    landing: Path, out: Path, quarter: Quarter, crash: str | None = None, *, full: bool = False
) -> _Run:
    return _Run(landing, out, quarter, crash, full=full)


def _finish(run: _Run) -> tuple[int, str]:
    return run.finish()


def _without_demo_notice(said: list[str]) -> list[str]:
    return [s for s in said if "DEMO pseudonym key" not in s]


def _frame_digest(path: Path) -> str:
    frame = pl.read_parquet(path)
    rows = sorted(repr(r) for r in frame.iter_rows())
    return f"{frame.columns} {hashlib.sha256(chr(0).join(rows).encode()).hexdigest()}"


def published(out: Path, quarter: Quarter) -> dict[str, str]:
    """What a reader of the quarter sees: every routed file's bytes, every table's and policy
    file's rows, and the warehouse's rows of the quarter."""
    q = Outputs(out).quarter(quarter)
    seen = {
        f"routed/{p.relative_to(q.routed).as_posix()}": hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(q.routed_files())
    }
    for folder in ("tables", "policy"):
        for p in sorted((q.root / folder).glob("*.parquet")):
            seen[f"{folder}/{p.name}"] = _frame_digest(p)
    with duckdb.connect(str(Outputs(out).warehouse), read_only=True) as con:
        for (table,) in con.sql("select table_name from duckdb_tables() order by 1").fetchall():
            rows = con.sql(f'select * from "{table}" where quarter = ?', params=[str(quarter)])
            seen[f"warehouse/{table}"] = str(sorted(repr(r) for r in rows.fetchall()))
    return seen


def leftovers(out: Path) -> list[str]:
    """What a run writes aside and removes when it completes."""
    patterns = (".publish-*", "routed.old-*", ".*.tmp*", ".warehouse.duckdb.*")
    found = [p for pattern in patterns for p in out.rglob(pattern)]
    found += [p for p in out.rglob(".ge/*") if p.is_file()]
    return sorted(str(p.relative_to(out)) for p in found)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The landing folder, the output folder with 2026Q2 published (`base`) and the one with
    2026Q2 and 2026Q3 published by clean runs (`clean`), and what 2026Q3 looks like there."""
    root = tmp_path_factory.mktemp("faults")
    landing = root / "landing"
    # The fork server is the process's one (multiprocessing's), which the quarterly job's
    # multiprocess executor also forks its steps from, in later tests of this worker: it keeps
    # the environment it starts with, so it starts with the demo key every test runs with.
    os.environ["SAFETYNET_PSEUDONYM_KEY"] = DEMO_KEY
    generate(landing, "test", [Q2, Q3], seed=3)
    for q in (Q2, Q3):
        for folder in (landing / str(q)).iterdir():
            if folder.is_dir() and folder.name not in ("mps", "mca"):
                shutil.rmtree(folder)
    base, clean = root / "base", root / "clean"
    code, said = _finish(_run(landing, base, Q2))
    assert code == 0, said
    shutil.copytree(base, clean, symlinks=True)
    code, said = _finish(_run(landing, clean, Q3))
    assert code == 0, said
    expected = published(clean, Q3)
    assert any(k.startswith("routed/") for k in expected), "the quarter routes warnings"
    assert expected["warehouse/warnings"] != "[]"
    return landing, base, clean, expected


@pytest.mark.parametrize("point", POINTS)
def test_a_rerun_killed_at_each_stage_leaves_the_last_good_outputs_and_runs_again_exactly(
    runs, tmp_path, point
):
    landing, _, clean, expected = runs
    work = tmp_path / "out"
    shutil.copytree(clean, work, symlinks=True)
    before_q2 = published(work, Q2)
    killed = _run(landing, work, Q3, crash=point)
    code, said = _finish(killed)
    assert code == -signal.SIGKILL, f"{point} was not reached: {said[-1500:]}"
    # the reader still sees the quarter whole, and the quarter before untouched
    assert published(work, Q3) == expected
    assert published(work, Q2) == before_q2
    # the dead run's lock does not block the next (the kernel released it with the process)
    assert f"pid {killed.pid} " in Outputs(work).run_lock.read_text()
    code, said = _finish(_run(landing, work, Q3))
    assert code == 0, said[-1500:]
    assert published(work, Q3) == expected
    assert leftovers(work) == []


@pytest.mark.parametrize("point", ["publishing"])
def test_a_new_quarter_killed_leaves_the_quarters_before_it_and_its_rerun_completes_it(
    runs, tmp_path, point
):
    landing, base, _, expected = runs
    work = tmp_path / "out"
    shutil.copytree(base, work, symlinks=True)
    before_q2 = published(work, Q2)
    code, said = _finish(_run(landing, work, Q3, crash=point))
    assert code == -signal.SIGKILL, said[-1500:]
    assert published(work, Q2) == before_q2
    code, said = _finish(_run(landing, work, Q3))
    assert code == 0, said[-1500:]
    assert published(work, Q3) == expected
    assert leftovers(work) == []


def test_a_second_run_on_the_same_out_is_refused_at_once_and_the_first_completes(runs, tmp_path):
    landing, _, clean, expected = runs
    work = tmp_path / "out"
    shutil.copytree(clean, work, symlinks=True)
    Outputs(work).run_lock.unlink()
    first = _run(landing, work, Q3)
    deadline = time.monotonic() + 120
    while f"pid {first.pid} " not in (
        Outputs(work).run_lock.read_text() if Outputs(work).run_lock.is_file() else ""
    ):
        assert first.poll() is None and time.monotonic() < deadline, "the first run never began"
        time.sleep(0.02)
    said: list[str] = []
    second = cli.run(landing, work, [Q3], echo=said.append)
    assert second == 2
    said = _without_demo_notice(said)
    assert len(said) == 1 and f"in use by another run (pid {first.pid} since" in said[0]
    assert "Traceback" not in said[0]
    code, out = _finish(first)
    assert code == 0, out[-1500:]
    assert published(work, Q3) == expected


def test_an_out_that_cannot_be_written_and_a_missing_landing_are_one_line_and_exit_2(
    runs, tmp_path
):
    landing = runs[0]
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    said: list[str] = []
    assert cli.run(landing, a_file / "out", [Q3], echo=said.append) == 2
    assert _without_demo_notice(said) == [
        f"safetynet: cannot write in --out {a_file / 'out'}: Not a directory"
    ]
    said.clear()
    assert cli.run(tmp_path / "nowhere", tmp_path / "out", [Q3], echo=said.append) == 2
    assert _without_demo_notice(said) == [
        f"safetynet: landing folder {tmp_path / 'nowhere'} does not exist"
    ]
    assert not (tmp_path / "out").exists()


@contextlib.contextmanager
def _small_disk(where: Path, megabytes: int):
    """A tmpfs of that size mounted at `where` (root, where the machine allows it), else None."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    try:
        yield where if mounted.returncode == 0 else None
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path, leave_kib: int) -> Path:
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free // 1024
    with filler.open("wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(0, (free - leave_kib) * 1024))
    return filler


@pytest.mark.parametrize("leave_kib", [0, 1024])
def test_a_full_disk_fails_the_quarter_in_one_line_and_the_last_good_outputs_stay(
    runs, tmp_path, leave_kib
):
    """On a real full disk where the machine lets the test mount a small tmpfs (root, as on
    CI), nothing free or 1 MiB free (the quarter needs more); elsewhere the routed files' writer
    is made to meet a full disk. Either way the run says so in one line, with no traceback, the
    quarter published before stays readable and the same, and once there is room a re-run
    completes it."""
    landing, _, clean, expected = runs
    with _small_disk(tmp_path / "disk", 64) as disk:
        work = (disk or tmp_path) / "out"
        shutil.copytree(clean, work, symlinks=True)
        filler = _fill(disk, leave_kib) if disk else None
        code, said = _finish(_run(landing, work, Q3, full=disk is None))
        assert code == 1, said[-1500:]
        assert "Traceback" not in said
        failed = [
            line for line in said.splitlines() if "No space left" in line or "no space" in line
        ]
        assert failed, said[-1500:]
        if disk is not None:
            assert failed == [
                line for line in said.splitlines() if "no space left on the disk" in line
            ]
        assert published(work, Q3) == expected
        if filler is not None:
            filler.unlink()
        code, said = _finish(_run(landing, work, Q3))
        assert code == 0, said[-1500:]
        assert published(work, Q3) == expected
