"""Shared fixtures: a landing folder and an output folder per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The pytest-xdist workers share the machine's cores (one worker per core): each worker's Polars
# gets one thread instead of a pool per core in every worker. Set before Polars is imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("POLARS_MAX_THREADS", "1")


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch):
    """Tests run with the demo key, which says it is one (a real run needs the province's)."""
    from pipelines.core import pseudonym
    from pipelines.orchestration.resources import KEY_ENV

    monkeypatch.setenv(KEY_ENV, pseudonym.DEMO_KEY)
    return pseudonym.DEMO_KEY.encode()


# The modules that take longest start first, longest first (pytest-xdist hands out one module at
# a time, in this order: --no-loadscope-reorder), so that the two workers finish together
# instead of one running a long module alone at the end.
SLOW_FIRST = (
    "test_spark.py",  # the one module that starts Spark (`make test` runs it after, alone)
    "test_faults.py",
    "test_bad_input.py",
    "test_exact_outputs.py",
    "test_rule_cases.py",
    "test_expectations.py",
    "test_privacy.py",
    "test_gate_rows.py",
    "test_install.py",
    "test_policy_end_to_end.py",
    "test_generate.py",
    "test_definitions.py",
    "test_catalogue.py",
)


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.path.name
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the order within a module is kept
