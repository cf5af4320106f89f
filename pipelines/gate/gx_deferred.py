"""Modules Great Expectations imports for features safetynet does not use, loaded on first use
instead: one of GE's workarounds (`gx_patches` lists the others), kept apart because it must run
before GE is imported (`pipelines/gate/__init__.py` calls `defer_unused` first), so it imports
nothing of GE.

Great Expectations imports every core expectation when it is imported, and two of them (the KL
divergence and the Kolmogorov–Smirnov metrics, which no contract uses) import `scipy.stats`,
which in turn imports most of SciPy: about 0.7 s of every process that validates
(bench/README.md, "The fixed cost of a quarter"). `defer` registers such a module with the
standard library's `importlib.util.LazyLoader`: the name is importable at once, and the module's
code runs the first time one of its attributes is read. Nothing changes for code that uses it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

# module -> why it is deferred
DEFERRED = {
    "scipy.stats": "imported by Great Expectations' distribution expectations, which no contract "
    "uses",
}


def defer(name: str) -> bool:
    """Register `name` to load on first attribute access; False where it is loaded already or
    not installed (then nothing is done)."""
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return False
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        # `from scipy import stats` reads the attribute; a package that imports its submodules
        # in `__getattr__` (SciPy) would otherwise import the module whole at once
        setattr(importlib.import_module(parent), child, module)
    return True


def defer_unused() -> None:
    for name in DEFERRED:
        defer(name)
