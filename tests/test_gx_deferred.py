"""Modules Great Expectations imports for features no contract uses load on first use
(`pipelines/gate/gx_deferred.py`)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import pipelines.gate.expectations
from scipy import stats
print("scipy.stats._stats_py" in sys.modules, round(float(stats.entropy([0.5, 0.5])), 6))
print("scipy.stats._stats_py" in sys.modules)
"""


def test_great_expectations_is_imported_without_scipy_stats_and_scipy_stats_still_works():
    said = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    # not loaded by importing GE; loaded, and right, once something reads it
    assert said == ["False", "0.693147", "True"]
