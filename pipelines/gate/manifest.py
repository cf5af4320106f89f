"""A department folder's `manifest.json` (extracts.md §1), and each file checked against it.

The manifest is optional. Where a department sends one, it lists every data file of its folder
by name with its row count, SHA-256 and, optionally, its encoding: a file absent from the folder,
a file it does not list, or one that differs from its entry fails its extract; a manifest that
cannot be read, names a path, or names another department or quarter fails every extract of the
department (docs/gate.md). The files themselves are read by `reader.py`; the landing sensor reads
the manifest too (`arrival.py`), to wait until every file it lists is there with its SHA-256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.layout import MANIFEST
from pipelines.gate.reader import FileProblem, ReadFile


@dataclass
class Manifest:
    """A department folder's manifest as read: its entries by file name, or the problem that
    makes it unusable."""

    path: Path
    files: dict[str, dict] | None  # None when the manifest itself is unusable
    problem: FileProblem | None = None


def read_manifest(path: Path, department: str, quarter: str) -> Manifest | None:
    """The department folder's `manifest.json`, if it has one (`Landing.manifest`)."""
    if not path.is_file():
        return None
    where = f"{department}/{MANIFEST}"
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
        files = doc["files"]
        if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
            raise ValueError("'files' must map file names to {rows, sha256}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        problem = FileProblem(
            "file.manifest_unreadable",
            f"{where}: cannot be read as a manifest ({type(e).__name__}); expected JSON with "
            '"files": {"<file>": {"rows": N, "sha256": "..."}}',
        )
        return Manifest(path, None, problem)
    pathlike = [n for n in files if "/" in n or "\\" in n or n in ("", ".", "..")]
    if pathlike:
        problem = FileProblem(
            "file.manifest_unreadable",
            f"{where}: lists {pathlike[0]!r}; a manifest names the files of its own folder, "
            "by name only (no folder, no '..')",
        )
        return Manifest(path, None, problem)
    for key, expected in (("department", department), ("quarter", quarter)):
        if key in doc and str(doc[key]) != expected:
            problem = FileProblem(
                "file.manifest_mismatch",
                f"{where}: {key} is {doc[key]!r}, expected {expected!r} (the folder it lies in)",
            )
            return Manifest(path, None, problem)
    return Manifest(path, files)


def manifest_problems(
    manifest: Manifest | None, department: str, extract: str, files: list[Path]
) -> tuple[list[FileProblem], list[str]]:
    """Problems the manifest finds for one extract before reading, and the listed names that
    are absent from the folder."""
    if manifest is None:
        return [], []
    if manifest.files is None:
        return [manifest.problem], []
    listed = [n for n in manifest.files if Path(n).stem == extract]
    present = {p.name for p in files}
    problems = [
        FileProblem(
            "file.manifest_mismatch",
            f"{department}/{p.name}: not listed in {MANIFEST}; every data file must be listed",
        )
        for p in files
        if p.name not in manifest.files
    ]
    absent = [n for n in listed if n not in present]
    problems += [
        FileProblem(
            "file.manifest_mismatch",
            f"{department}/{n}: listed in {MANIFEST} but absent from the folder",
        )
        for n in absent
    ]
    return problems, absent


_ENCODING_FAMILIES = {
    "utf-8": "UTF-8",
    "utf8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "gb18030": "GB18030",
    "gbk": "GB18030",
    "gb2312": "GB18030",
    "cp936": "GB18030",
}


def _declared_encoding(declared: str, detected: str | None, where: str) -> FileProblem | None:
    """A CSV's encoding as its manifest entry declares it (`"encoding"`, optional) against what
    the file turned out to be: GBK and GB2312 are read as their superset GB18030."""
    family = _ENCODING_FAMILIES.get(declared.strip().lower())
    if family is None:
        return FileProblem(
            "file.encoding_mismatch",
            f"{where}: the manifest declares encoding {declared!r}; expected utf-8, gb18030 or gbk",
        )
    found = _ENCODING_FAMILIES.get(detected or "")
    if found is None or found == family:
        return None  # undecodable: that problem is reported already
    return FileProblem(
        "file.encoding_mismatch",
        f"{where}: the manifest declares {declared}, but the file is {found} text; every row is "
        "kept, and the file must be sent again as declared (or the manifest corrected)",
    )


def check_against_manifest(read: ReadFile, manifest: Manifest | None, department: str) -> None:
    """Add to `read.problems` where the file differs from its manifest entry: encoding, SHA-256,
    data rows (known once the gate's first pass has counted them)."""
    if manifest is None or manifest.files is None:
        return
    entry = manifest.files.get(read.path.name)
    if entry is None:
        return
    where = f"{department}/{read.path.name}"
    if "encoding" in entry and read.file_format == "csv" and not read.plain_ascii:
        problem = _declared_encoding(str(entry["encoding"]), read.encoding, where)
        if problem is not None:
            read.problems.append(problem)
    want_hash = str(entry.get("sha256", "")).lower()
    if want_hash and read.sha256 and want_hash != read.sha256:
        read.problems.append(
            FileProblem(
                "file.manifest_mismatch",
                f"{where}: sha256 is {read.sha256[:12]}…, the manifest says {want_hash[:12]}…",
            )
        )
    if "rows" in entry and read.frame is not None and int(entry["rows"]) != read.rows:
        read.problems.append(
            FileProblem(
                "file.manifest_mismatch",
                f"{where}: {read.rows:,} data rows read, the manifest says {int(entry['rows']):,}",
            )
        )
