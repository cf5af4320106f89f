"""Publishing atomically (outputs.md: "a reader never sees a half-written quarter").

Everything a quarter publishes is written aside, under `<out>/<q>/.publish-<pid>/` with the same
names as in the quarter's folder, and moved into place only when complete: every file by an atomic
rename, then the routed folder swapped in two renames (old aside, new in). A run killed midway
leaves the quarter published before it as it was; `recover` puts the old routed folder back if a
run died between the two renames, and removes what abandoned runs left aside.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from pipelines.core.layout import QuarterOutputs

logger = logging.getLogger(__name__)


def start(quarter: QuarterOutputs) -> QuarterOutputs:
    """A clean folder to write the quarter aside in (this process's)."""
    aside = quarter.publishing()
    if aside.root.exists():
        shutil.rmtree(aside.root)
    aside.root.mkdir(parents=True)
    return aside


def move_into_place(aside: QuarterOutputs, quarter: QuarterOutputs, files: Iterable[str]) -> None:
    """Every file (a path relative to the quarter's folder) by an atomic rename, then the routed
    folder; the aside folder is then removed."""
    for name in files:
        target = quarter.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(aside.root / name, target)
    swap_dir(aside.routed, quarter.routed, quarter.routed_set_aside())
    _clear(aside.root)


def swap_dir(new: Path, target: Path, old: Path) -> None:
    """`target` replaced by `new`: the old one renamed aside first, removed last."""
    if target.exists():
        os.rename(target, old)
    os.rename(new, target)
    _clear(old)


def _clear(leftover: Path) -> None:
    """Remove what the quarter, already published, no longer needs. If that fails (a file held
    open elsewhere), the quarter stays published: the failure is logged and the next run's
    `recover` removes it."""
    if not leftover.exists():
        return
    try:
        shutil.rmtree(leftover)
    except OSError as e:
        logger.warning("%s not removed (%s); the next run of the quarter removes it", leftover, e)


def recover(quarter: QuarterOutputs) -> None:
    """Undo what a run killed mid-publish left: the old routed folder put back if it was moved
    aside and the new one never arrived; abandoned `.publish-*` folders removed."""
    if not quarter.root.is_dir():
        return
    for old in quarter.routed_left_aside():
        if not quarter.routed.exists():
            os.rename(old, quarter.routed)
        else:
            shutil.rmtree(old)
    for aside in quarter.abandoned_publishing():
        shutil.rmtree(aside)
