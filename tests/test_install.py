"""The package installs with `pip install .` (not editable) and runs from any folder: the data
contracts, the rules and the SQL (the policy's, and the lifecycle's of publishing) ship inside it
(pyproject.toml, `pipelines/core/resources.py`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import polars as pl

from pipelines.core.contracts import extract_contracts
from pipelines.policy.catalogue import catalogue

ROOT = Path(__file__).resolve().parent.parent


def _clean_copy(target: Path) -> Path:
    """The files a clone of the checkout would hold (tracked, and new ones git does not ignore),
    nothing built or generated."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_pip_install_dot_into_a_fresh_venv_runs_from_another_folder(tmp_path):
    """A fresh venv gets the package from a clean copy by `pip install .` (this environment's
    pip, pointed at the venv with `--python`); the pinned dependencies it needs come from this
    test run's environment (a `.pth` line, so no index is asked for them), never the checkout.
    From an unrelated folder, `safetynet generate` and `safetynet run` then work, reading the
    contracts, rules and SQL from the installed package. The run gets the registry and the
    roster only (the other extracts MISSING), which keeps it short and still evaluates rules."""
    src = _clean_copy(tmp_path / "clone")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    installed = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")),
            *("install", "--quiet", "--no-deps", str(src)),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    shutil.rmtree(src)  # nothing of the checkout is left to read from

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import pipelines.core.resources as r; print(r.SQL_DIR)",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(site), where

    safetynet = str(venv / "bin" / "safetynet")
    generated = subprocess.run(
        [safetynet, "generate", "--out", "landing", "--scale", "test", "--quarters", "2026Q3"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
    )
    assert generated.returncode == 0, generated.stderr[-2000:]
    for folder in (elsewhere / "landing" / "2026Q3").iterdir():
        if folder.is_dir() and folder.name not in ("mps", "mca"):
            shutil.rmtree(folder)
    ran = subprocess.run(
        [safetynet, "run", "--landing", "landing", "--out", "out", "--quarters", "2026Q3"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=lambda: os.umask(0),  # an operator's shell that lets everyone read
    )
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert "Traceback" not in ran.stdout + ran.stderr
    quality = pl.read_parquet(elsewhere / "out" / "2026Q3" / "tables" / "extract_quality.parquet")
    assert quality.height == len(extract_contracts())
    assert set(quality.filter(pl.col("status") == "PASSED")["department"]) == {"mps", "mca"}
    runs = pl.read_parquet(elsewhere / "out" / "2026Q3" / "tables" / "rule_runs.parquet")
    assert runs.height == len(catalogue())
    evaluated = set(runs.filter(pl.col("status") == "EVALUATED")["rule_id"])
    # the rules that read nothing besides the registry and the roster
    assert evaluated == {r.rule_id for r in catalogue() if not r.reads} != set()
    assert (elsewhere / "out" / "warehouse.duckdb").is_file()
    # the lifecycle's comparison ships too (package data of pipelines.publish)
    assert (elsewhere / "out" / "2026Q3" / "tables" / "warning_lifecycle.parquet").is_file()
    assert (elsewhere / "out" / "data_docs" / "index.html").is_file()
    # the Data Docs' scripts ship in the package too (offline pages: gate/datadocs.py)
    vendor = elsewhere / "out" / "data_docs" / "static" / "vendor"
    assert (vendor / "jquery" / "jquery.min.js").is_file()
    assert (vendor / "fontawesome" / "webfonts" / "fa-solid-900.woff2").is_file()
    assert (elsewhere / "out" / "2026Q3" / "quality_report.html").is_file()
    # files with personal data are readable by their owner and group only (issue 13, §4)
    quarter = elsewhere / "out" / "2026Q3"
    personal = [
        p for d in ("routed", "policy", "staging", "quarantine") for p in (quarter / d).rglob("*")
    ]
    assert any(p.suffix == ".csv" for p in personal) and any(p.is_dir() for p in personal)
    for p in [*(quarter / d for d in ("routed", "policy", "staging", "quarantine")), *personal]:
        mode = p.stat().st_mode
        assert mode & 0o007 == 0 and mode & 0o020 == 0, f"{p.relative_to(quarter)}: {oct(mode)}"
