"""Publishing atomically (outputs.md: "a reader never sees a half-written quarter").

Everything a quarter publishes is written aside, under `<out>/<q>/.publish-<pid>/` with the same
names as in the quarter's folder, and moved into place only when complete: every file by an atomic
rename, then the routed folder swapped in two renames (old aside, new in). A run killed midway
leaves the quarter published before it as it was; on Linux the routed folder is exchanged for the
new one in one step, and elsewhere `recover` puts the old routed folder back if a run died between
the two renames; it also removes what abandoned runs left aside.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from pipelines.core.faults import crash_point
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
        crash_point("publishing")
    swap_dir(aside.routed, quarter.routed, quarter.routed_set_aside())
    _clear(aside.root)


def swap_dir(new: Path, target: Path, old: Path) -> None:
    """`target` replaced by `new`. On Linux in one step (`renameat2` with `RENAME_EXCHANGE`): a
    reader sees the old folder or the new one, never neither, even if the run is killed.
    Elsewhere (or on a file system without it) the old one is renamed aside first, and `recover`
    puts it back if the run dies before the new one is in. The old one is removed last."""
    if target.exists():
        if _exchange(new, target):  # `new` now names the old folder
            crash_point("routed_swap")
            _clear(new)
            return
        os.rename(target, old)
        crash_point("routed_swap")
    os.rename(new, target)
    _clear(old)


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the system cannot (then nothing was moved)."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # not glibc 2.28+ / not Linux
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # the file system has no exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


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
