"""Every path safetynet reads or writes, named once: the landing folder (extracts.md §1) and the
output folder `<out>/` (outputs.md). No other module spells a path; each asks this one.

```
<landing>/<quarter>/<dept>/<extract>.<csv|parquet|xlsx>   the departments' files (and manifest.json)
<out>/
  <quarter>/
    gate/<dept>.<extract>.json            the gate's result per extract        (gate)
    staging/<dept>/<extract>.parquet      accepted rows, typed                 (gate)
    quarantine/<dept>/<extract>.parquet   rejected rows as received + reasons  (gate)
    tables/<name>.parquet                 the quarter's tables (TABLES: whose) (each stage)
    policy/warnings.parquet               raised warnings, personal            (policy)
    policy/facts/<table>.parquet          the facts as evaluated, personal     (policy)
    policy/routed.parquet                 which file each key went to          (publish)
    routed/<department>/<county>.csv      the routed files                     (publish)
    quality_report.html                   the auditors' page                   (publish)
  warehouse.duckdb                        the analyst warehouse                (publish)
  .run.lock                               held by the run writing <out>        (orchestration)
  whatif/<name>/                          a reform's comparison (counts only)  (policy)
  gx/, data_docs/, .gx.lock               Great Expectations, its Data Docs    (gate)
  data_docs/static/vendor/                their scripts and styles, offline    (gate)
  .dagster/                               the Dagster instance                 (orchestration)
  .duckdb/                                DuckDB's spill folder                (policy)
  landing/                                the demo's generated landing folder  (make demo)
```

A path recorded inside `<out>/` (the gate's results, the saved facts' record) is relative to
`<out>/` (`Outputs.written`): the folder can be copied, moved or restored from a
backup and still reads its own files.

Which table a stage writes under `tables/` is named by that stage (`TABLES` below lists them all,
with the stage that writes each, so a reader finds the one folder that writes a file).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
DAGSTER_YAML = "dagster.yaml"  # the instance's configuration, in any Dagster home
DAGSTER_HISTORY = "history"  # its run and event-log storage, in any Dagster home
EXTRACT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}
_QUARTER_DIR = re.compile(r"^\d{4}Q[1-4]$")

# <out>/<quarter>/tables/<name>.parquet -> the stage that writes it
TABLES = {
    "extract_quality": "gate",
    "quarantine_reasons": "gate",
    "rule_runs": "policy",
    "data_findings": "policy",
    "warnings": "publish",
    "warning_lifecycle": "publish",
    "feedback": "publish",
}


@dataclass(frozen=True)
class Landing:
    """`<landing>/<quarter>/<dept>/<extract>.<ext>` (extracts.md §1)."""

    root: Path

    def quarter(self, quarter: object) -> Path:
        return Path(self.root) / str(quarter)

    def folder(self, quarter: object, department: str) -> Path:
        return self.quarter(quarter) / department

    def manifest(self, quarter: object, department: str) -> Path:
        return self.folder(quarter, department) / MANIFEST

    def extract_file(self, quarter: object, department: str, extract: str, fmt: str) -> Path:
        return self.folder(quarter, department) / f"{extract}.{fmt}"

    def sidecar(self, quarter: object, name: str) -> Path:
        """A file of the generator's beside the department folders (`_planted_errors.json`, …):
        what it planted, for the tests and the demo. The gate never reads it."""
        return self.quarter(quarter) / name

    def any_file_named(self, quarter: object, department: str, stem: str) -> bool:
        """Whether the folder holds a file `<stem>.<anything>` (an optional extract was sent),
        the name's case ignored as in `extract_files`."""
        folder = self.folder(quarter, department)
        if not folder.is_dir():
            return False
        return any(p.name.lower().startswith(f"{stem.lower()}.") for p in folder.iterdir())

    def quarters(self) -> list[Path]:
        """The quarter folders that arrived, in name order."""
        root = Path(self.root)
        return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    def extract_files(self, quarter: object, department: str, extract: str) -> list[Path]:
        """What a department folder holds under `extract`'s name, in any allowed format, the
        name's case ignored (`STUDENTS.CSV` from a Windows export is the students extract): the
        files, and also a folder or a link of that name, which the gate refuses by name rather
        than count as not sent."""
        folder = self.folder(quarter, department)
        if not folder.is_dir():
            return []
        return sorted(
            p
            for p in folder.iterdir()
            if p.stem.lower() == extract and p.suffix.lower() in EXTRACT_FORMATS
        )


@dataclass(frozen=True)
class QuarterOutputs:
    """`<out>/<quarter>/` — or, with `root` a publishing folder set aside, the same names in it."""

    root: Path

    # -- the gate
    @property
    def gate_results(self) -> Path:
        return self.root / "gate"

    def gate_result(self, department: str, extract: str) -> Path:
        return self.gate_results / f"{department}.{extract}.json"

    def gate_result_files(self) -> list[Path]:
        return sorted(self.gate_results.glob("*.json")) if self.gate_results.is_dir() else []

    def staging(self, department: str, extract: str) -> Path:
        return self.root / "staging" / department / f"{extract}.parquet"

    def ge_inputs(self, department: str, extract: str) -> tuple[Path, str]:
        """Where the gate leaves the rows as Great Expectations validates them
        (`checks.Prepared`), and the glob of the extract's files there (one per gating:
        `<dept>.<extract>.<token>.parquet`). Personal data, kept only from the gate to the end
        of the extract's validation."""
        return self.root / "staging" / ".ge", f"{department}.{extract}.*.parquet"

    def quarantine(self, department: str, extract: str) -> Path:
        return self.root / "quarantine" / department / f"{extract}.parquet"

    # -- the tables every stage adds to
    @property
    def tables(self) -> Path:
        return self.root / "tables"

    def table(self, name: str) -> Path:
        if name not in TABLES:
            raise KeyError(f"{name} is not one of the quarter's tables {sorted(TABLES)}")
        return self.tables / f"{name}.parquet"

    # -- the policy stage (personal data: read by publishing only)
    @property
    def personal_warnings(self) -> Path:
        return self.root / "policy" / "warnings.parquet"

    @property
    def saved_facts(self) -> Path:
        """The quarter's fact tables and raised warnings as evaluated, one Parquet file each,
        for what-if comparisons (`policy/saved.py` `save`): personal, like the warnings."""
        return self.root / "policy" / "facts"

    def saved_fact(self, table: str) -> Path:
        return self.saved_facts / f"{table}.parquet"

    @property
    def saved_facts_record(self) -> Path:
        """What the saved facts were built from; written last, removed first."""
        return self.saved_facts / "facts.json"

    # -- publishing
    @property
    def routing(self) -> Path:
        """Which routed file each warning key went to (escalation copies included)."""
        return self.root / "policy" / "routed.parquet"

    @property
    def routed(self) -> Path:
        return self.root / "routed"

    def routed_file(self, department: str, county: str) -> Path:
        return self.routed / department / f"{county}.csv"

    def routed_files(self) -> list[Path]:
        return sorted(self.routed.glob("*/*.csv"))

    @property
    def report(self) -> Path:
        return self.root / "quality_report.html"

    def publishing(self, pid: int | None = None) -> QuarterOutputs:
        """The folder a publishing run writes aside in before moving into place."""
        return QuarterOutputs(self.root / f".publish-{os.getpid() if pid is None else pid}")

    def abandoned_publishing(self) -> list[Path]:
        return sorted(self.root.glob(".publish-*"))

    def routed_set_aside(self, pid: int | None = None) -> Path:
        """Where the published routed folder waits while the new one is moved in."""
        return self.root / f"routed.old-{os.getpid() if pid is None else pid}"

    def routed_left_aside(self) -> list[Path]:
        return sorted(self.root.glob("routed.old-*"))


@dataclass(frozen=True)
class Outputs:
    """`<out>/`: every quarter's folder and what spans the quarters."""

    root: Path

    def quarter(self, quarter: object) -> QuarterOutputs:
        return QuarterOutputs(Path(self.root) / str(quarter))

    def written(self, path: Path) -> str:
        """A path under `<out>/` as a file inside `<out>/` records it: relative to `<out>/`, so
        that a copied, moved or restored output folder reads its own files, not the original's.
        A path outside `<out>/` is recorded as it is."""
        path, root = Path(path), Path(self.root)
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

    def quarters(self) -> list[str]:
        """The quarters with a folder, oldest first."""
        root = Path(self.root)
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and _QUARTER_DIR.match(p.name))

    @property
    def demo_landing(self) -> Path:
        """Where `make demo` writes its generated landing folder (and the UI looks by default)."""
        return Path(self.root) / "landing"

    @property
    def warehouse(self) -> Path:
        return Path(self.root) / "warehouse.duckdb"

    def warehouse_copy(self, pid: int | None = None) -> Path:
        """The copy a quarter is loaded into before it replaces the warehouse."""
        return Path(self.root) / f".warehouse.duckdb.{os.getpid() if pid is None else pid}"

    def warehouse_copies_of_the_dead(self) -> list[Path]:
        """Copies that killed runs left (`left_by_the_dead`)."""
        copies = Path(self.root).glob(".warehouse.duckdb.*")
        return sorted(p for p in copies if left_by_the_dead(p.name.rsplit(".", 1)[1]))

    @property
    def data_docs(self) -> Path:
        return Path(self.root) / "data_docs"

    @property
    def data_docs_validations(self) -> Path:
        """Great Expectations' validation pages, `<suite as folders>/<run name>/…` below."""
        return self.data_docs / "validations"

    @property
    def data_docs_index(self) -> Path:
        return self.data_docs / "index.html"

    @property
    def data_docs_vendor(self) -> Path:
        """The pages' scripts, style sheets and fonts, so that they open with no network
        (`gate/datadocs.py`); GE's own static files are beside it in `static/`."""
        return self.data_docs / "static" / "vendor"

    @property
    def gx_project(self) -> Path:
        """Great Expectations' project root: its file context lives in `gx/` below it."""
        return Path(self.root)

    @property
    def gx_config(self) -> Path:
        """Great Expectations' project configuration, which GE rewrites when it adds an asset."""
        return self.gx_project / "gx" / "great_expectations.yml"

    @property
    def gx_index_links(self) -> Path:
        """What the Data Docs index shows of each stored validation (`gate/gx_patches.py`),
        kept so that building the index does not read every earlier quarter's results again."""
        return self.gx_project / "gx" / "uncommitted" / "index_links.json"

    @property
    def run_lock(self) -> Path:
        """Held by the `safetynet run` writing this folder: a second one is refused."""
        return Path(self.root) / ".run.lock"

    @property
    def gx_lock(self) -> Path:
        return Path(self.root) / ".gx.lock"

    @property
    def dagster_home(self) -> Path:
        return Path(self.root) / ".dagster"

    @property
    def duckdb_spill(self) -> Path:
        return Path(self.root) / ".duckdb"

    @property
    def spark_spill(self) -> Path:
        """Spark's `spark.local.dir` for a local session: shuffle files and spilled blocks."""
        return Path(self.root) / ".spark"

    def whatif(self, name: str) -> Path:
        """A policy reform's comparison on a published quarter (`policy/whatif.py`)."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ValueError(f"what-if name {name!r}: letters, digits, '_', '.' and '-' only")
        return Path(self.root) / "whatif" / name

    def whatif_changes(self, name: str) -> Path:
        """One row per rule × county × category, the counts of each side (`CHANGE_SCHEMA`)."""
        return self.whatif(name) / "changes.parquet"

    def whatif_record(self, name: str) -> Path:
        """The reform, its dates, its totals and the time taken."""
        return self.whatif(name) / "run.json"

    def whatif_runs_table(self, name: str) -> Path:
        """The same as one row of the warehouse's `whatif_runs`."""
        return self.whatif(name) / "run.parquet"

    def whatif_page(self, name: str) -> Path:
        """The comparison for analysts and the finance department, self-contained."""
        return self.whatif(name) / "whatif.html"

    def spill(self, engine: str) -> Path:
        """Where the policy engine of that name may spill."""
        return self.spark_spill if engine == "spark" else self.duckdb_spill


# New files readable by their owner and group only, folders enterable by them only: the routed
# files, the staging and quarantine tables, the policy's warnings, DuckDB's and Spark's spill
# and GE's prepared rows all hold identity numbers and names.
PRIVATE_UMASK = 0o027


def restrict_new_files() -> None:
    """From now on, this process (and what it starts) creates files no other user can read:
    the umask gains `PRIVATE_UMASK`'s bits and loses none it had."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)


# <out>/data_docs/index.html as the quality report in <out>/<quarter>/ links it
DATA_DOCS_FROM_QUARTER = "../data_docs/index.html"


def aside(path: Path, pid: int | None = None) -> Path:
    """A temporary name beside `path` for writing it before an atomic rename into place. What a
    killed writer left aside for the same file (a process no longer running) is removed first:
    each writer asks for its name just before it writes."""
    for left in path.parent.glob(f".{glob.escape(path.name)}.tmp*"):
        if left_by_the_dead(left.name.rsplit(".tmp", 1)[1]):
            left.unlink(missing_ok=True)
    return path.with_name(f".{path.name}.tmp{os.getpid() if pid is None else pid}")


def left_by_the_dead(pid: str) -> bool:
    """Whether the process `pid` (as written in a file's name) no longer runs, so what it left
    aside may go. On a machine running several hosts' writers on a shared folder a pid is not
    enough; safetynet's writers of one `<out>` run on one machine (the run lock)."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process, alive
        return False
    return False
