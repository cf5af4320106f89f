"""Shared fixtures: a landing folder and an output folder per test."""

from __future__ import annotations

from pathlib import Path

import pytest


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
    from pipelines import pseudonym

    monkeypatch.setenv(pseudonym.ENV, pseudonym.DEMO_KEY)
    return pseudonym.DEMO_KEY.encode()
