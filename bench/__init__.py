"""Benchmarks (`make bench`). Never run by the tests; outputs land in `.bench/` (gitignored)."""

import json
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / ".bench"


def write_report(name: str, md: str, report: dict) -> None:
    """`.bench/<name>.md` and `.bench/<name>.json`, the report as read and as data."""
    (BENCH_DIR / f"{name}.md").write_text(md, encoding="utf-8")
    (BENCH_DIR / f"{name}.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8"
    )
