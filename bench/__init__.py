"""Benchmarks (`make bench`). Never run by the tests; outputs land in `.bench/` (gitignored)."""

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / ".bench"
