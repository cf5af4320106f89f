"""Whether a quarter's landing folder has arrived (what the landing sensor asks).

A quarter folder `<landing>/<quarter>/` has *arrived* when every department of extracts.md §3 has
a folder holding at least one extract file (`<extract>.<ext>` for one of its extracts) and, where
the folder has a `manifest.json`, every file it lists is present with the listed sha256 (row
counts are the gate's business). Its digest covers every file's name, size and modification time:
a department that re-sends its folder changes the digest; an unchanged folder does not.

`arrivals` decides, from the sensor's cursor, which quarters to run: those arrived whose digest
differs from the one last requested, oldest first, among the quarters that have ended, lie inside
the job's partitions and are at most `max_age` quarters before the current one. The cursor keeps,
per quarter, the digest last requested, and the sha256 of files already verified against a
manifest (by name, size and mtime), so a province-scale file is hashed once, not at every
evaluation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.contracts import extract_contracts
from pipelines.core.layout import MANIFEST, Landing
from pipelines.core.quarters import Quarter
from pipelines.gate.manifest import read_manifest
from pipelines.gate.reader import sha256_of


def departments() -> dict[str, frozenset[str]]:
    """Department code → its extract names (extracts.md §3)."""
    out: dict[str, set[str]] = {}
    for c in extract_contracts():
        out.setdefault(c.department, set()).add(c.extract)
    return {d: frozenset(e) for d, e in sorted(out.items())}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def quarter_status(
    landing: Landing, quarter: str, depts: dict[str, frozenset[str]], verified: dict[str, list]
) -> tuple[str | None, list[str]]:
    """(digest, []) when every department of the quarter folder has arrived, else (None, what is
    still missing). `verified` maps `<quarter>/<dept>/<file>` to [size, mtime_ns, sha256] of files
    already hashed; it is updated in place."""
    waiting: list[str] = []
    entries: list[str] = []
    for dept, extracts in depts.items():
        dfolder = landing.folder(quarter, dept)
        files = _files(dfolder)
        if not any(p.stem.lower() in extracts for p in files):
            waiting.append(f"{dept}: no extract file")
            continue
        for p in files:
            st = p.stat()
            entries.append(f"{dept}/{p.name}\t{st.st_size}\t{st.st_mtime_ns}")
        if not landing.manifest(quarter, dept).is_file():
            continue
        manifest = read_manifest(landing.manifest(quarter, dept), dept, quarter)
        if manifest is None or manifest.files is None:
            waiting.append(f"{dept}: {MANIFEST} unreadable or for another folder")
            continue
        names = {p.name: p for p in files}
        for name, listed in sorted(manifest.files.items()):
            path = names.get(name)
            if path is None:
                waiting.append(f"{dept}: {name} listed in {MANIFEST} but absent")
                continue
            st = path.stat()
            key = f"{quarter}/{dept}/{name}"
            seen = verified.get(key)
            if seen and seen[0] == st.st_size and seen[1] == st.st_mtime_ns:
                sha = seen[2]
            else:
                sha = sha256_of(path)
                verified[key] = [st.st_size, st.st_mtime_ns, sha]
            if sha.lower() != str(listed.get("sha256", "")).strip().lower():
                waiting.append(f"{dept}: {name} does not match its sha256 in {MANIFEST}")
    if waiting:
        return None, waiting
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16], []


def load_cursor(text: str | None) -> tuple[dict, str | None]:
    """The sensor's state, and what was wrong with the cursor if it could not be read (then the
    state starts empty: every arrived quarter is requested again, never one skipped)."""
    problem = None
    try:
        doc = json.loads(text) if text else {}
    except ValueError as e:
        doc, problem = {}, f"the sensor's cursor is not JSON ({e}); starting from an empty one"
    if not isinstance(doc, dict):
        doc, problem = {}, "the sensor's cursor is not a JSON object; starting from an empty one"
    state = {
        "requested": dict(doc.get("requested") or {}),
        "verified": dict(doc.get("verified") or {}),
    }
    return state, problem


@dataclass
class Arrivals:
    runs: list[tuple[str, str]]  # (quarter, digest) to run, oldest first
    waiting: list[str]  # `<quarter> waits for …`
    cursor: str  # the new cursor
    span: str  # the quarters looked at, e.g. `2024Q3..2026Q2`
    problem: str | None = None  # what was wrong with the cursor it was given


def arrivals(
    landing: Path,
    cursor: str | None,
    *,
    today: dt.date,
    max_age: int,
    known: Collection[str] | None = None,
) -> Arrivals:
    """The quarters to run now (the module docstring)."""
    root = Landing(landing)
    state, problem = load_cursor(cursor)
    current = Quarter.containing(today)
    oldest = current
    for _ in range(max_age):
        oldest = oldest.previous()
    quarters = []
    for folder in root.quarters():
        q = Quarter.named(folder.name)  # other folders are not quarters
        if q is not None and oldest <= q < current and (known is None or str(q) in known):
            quarters.append(q)
    quarters.sort()
    present = {str(q) for q in quarters}
    requested = {k: v for k, v in state["requested"].items() if k in present}
    verified = {k: v for k, v in state["verified"].items() if k.split("/", 1)[0] in present}
    depts = departments()
    runs, waiting = [], []
    for q in quarters:
        quarter = str(q)
        digest, missing = quarter_status(root, quarter, depts, verified)
        if digest is None:
            waiting.append(f"{quarter} waits for " + "; ".join(missing))
            continue
        if requested.get(quarter) == digest:
            continue
        requested[quarter] = digest
        runs.append((quarter, digest))
    new_cursor = json.dumps({"requested": requested, "verified": verified}, sort_keys=True)
    return Arrivals(runs, waiting, new_cursor, f"{oldest}..{current.previous()}", problem)
