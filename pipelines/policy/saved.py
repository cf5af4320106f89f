"""The facts of an evaluated quarter, saved so that a reform is evaluated on them (`whatif.py`).

The policy step leaves, beside the quarter's warnings, the costly fact models (`SAVED`: the
person and household models over the registry) and the raised warnings (`raised`) as
evaluated, one Parquet file each under `<q>/policy/facts/`, and last
a record `facts.json` of what they were built from: the fact models' SQL, each rule's version,
the parameters in effect on `E`, and the size and modification time of every file the
evaluation read or wrote (the staging tables of the quarter and of W, the warnings, `rule_runs`,
`data_findings`, each saved fact) and a mark of the pseudonym key. The record is removed
before the quarter's outputs are written again (`forget`) and written last, so a killed step
leaves no record; a failure to save leaves none either, and fails nothing.

`open_saved` gives the baseline back only while every one of those still holds; otherwise it
says why not, and the caller builds the facts again from the staging tables (as when the quarter
was evaluated on Spark, which saves no facts: `Engine.save_parquet`). The files hold identity
numbers and names, as `policy/warnings.parquet` does, and stay in the quarter's `policy/`
folder, which only publishing and what-if read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from pipelines.core import gbt2260, pseudonym
from pipelines.core import parameters as policy_parameters
from pipelines.core.layout import Outputs, QuarterOutputs, aside
from pipelines.core.resources import CONTRACTS_DIR
from pipelines.policy import catalogue as catalogue_module
from pipelines.policy import engine as engine_module
from pipelines.policy import evaluate, facts, lineage
from pipelines.policy.catalogue import RAISED, catalogue
from pipelines.policy.engine import Engine
from pipelines.policy.evaluate import (
    BASELINE_RAISED,
    FINDING_SCHEMA,
    RULE_RUN_SCHEMA,
    WARNING_SCHEMA,
    Evaluation,
)

logger = logging.getLogger(__name__)
# the code an evaluation runs, besides the SQL: a saved one made by other code is not used
_CODE = (
    facts,
    evaluate,
    catalogue_module,
    engine_module,
    lineage,
    gbt2260,
    policy_parameters,
    pseudonym,
)
# The tables saved, each as <q>/policy/facts/<table>.parquet: the models whose building is the
# quarter's cost (the joins and aggregations over the registry), and the raised warnings. The
# others are cheap from these (the thin `fct_` layer) or read only by what a reform of their
# own parameters builds again anyway; what-if builds them when it needs them.
SAVED = ("int_persons", "int_roster_households", "int_registry_households", RAISED)


def _code() -> str:
    """A digest of what the saved evaluation was computed with: the SQL (the macros and every
    model), the policy stage's and the shared core's code it runs, and the data contracts (the
    staging tables' columns and types)."""
    digest = hashlib.sha256()
    for name in ("macros", *facts.MODELS):
        digest.update(name.encode() + b"\0" + facts.model_sql(name).encode("utf-8") + b"\0")
    files = [Path(m.__file__ or "") for m in _CODE]
    files += sorted(CONTRACTS_DIR.glob("*.yaml"))
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _key_mark(key: bytes) -> str:
    """Which pseudonym key the saved warnings were keyed with, without the key: a comparison
    must key both sides alike."""
    return pseudonym.digest(key, "saved facts")[:16]


def forget(out: Path, quarter: str) -> None:
    """The quarter's saved evaluation no longer stands (its outputs are about to be written
    again): its record is removed first."""
    Outputs(out).quarter(quarter).saved_facts_record.unlink(missing_ok=True)


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _inputs(q: QuarterOutputs, sources: facts.Sources) -> list[Path]:
    """Every file the saved evaluation stands on, besides the saved facts themselves."""
    written = [q.personal_warnings, q.table("rule_runs"), q.table("data_findings")]
    return [*written, *(sources.staging[k] for k in sorted(sources.staging))]


def save(
    engine: Engine, out: Path, sources: facts.Sources, evaluation: Evaluation, key: bytes
) -> bool:
    """Save the session's facts and raised warnings for the quarter just evaluated and written
    (`evaluate.write`, after `forget`); False, with no facts left for the quarter, where the
    engine cannot or the files cannot be written (a full disk: the quarter's outputs stand,
    and what-if evaluates its baseline again)."""
    q = Outputs(out).quarter(evaluation.quarter)
    forget(out, evaluation.quarter)
    try:
        return _save(engine, out, q, sources, evaluation, key)
    except OSError as e:
        logger.warning("the facts of %s were not saved (%s)", evaluation.quarter, e.strerror)
        _remove(q.saved_facts)
        return False


def _save(
    engine: Engine,
    out: Path,
    q: QuarterOutputs,
    sources: facts.Sources,
    evaluation: Evaluation,
    key: bytes,
) -> bool:
    if not evaluation.processed:
        _remove(q.saved_facts)
        return False
    q.saved_facts.mkdir(parents=True, exist_ok=True)
    for left in q.saved_facts.glob("*.parquet"):  # what an earlier version saved: not kept
        if left.stem not in SAVED:
            left.unlink()
    for table in SAVED:
        path = q.saved_fact(table)
        tmp = aside(path)
        if not engine.save_parquet(table, tmp):
            _remove(q.saved_facts)
            return False
        os.replace(tmp, path)
    record = {
        "quarter": evaluation.quarter,
        "engine": engine.name,
        "code": _code(),
        "rules": {r.rule_id: r.rule_version for r in catalogue()},
        "parameters": evaluation.parameters,
        "key": _key_mark(key),
        "files": {Outputs(out).written(p): _stamp(p) for p in _inputs(q, sources)},
        "saved": {table: _stamp(q.saved_fact(table)) for table in SAVED},
    }
    tmp = aside(q.saved_facts_record)
    tmp.write_text(json.dumps(record, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, q.saved_facts_record)
    return True


def _remove(folder: Path) -> None:
    """No saved facts: none can be stale."""
    if folder.exists():
        shutil.rmtree(folder)


@dataclass
class Saved:
    """A quarter's saved evaluation, still valid: the baseline, and where its facts lie."""

    baseline: Evaluation
    paths: dict[str, Path]  # table -> its Parquet file

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(t for t in self.paths if t != RAISED)

    def attach(self, engine: Engine) -> None:
        """Each saved fact model as a view on its file (read where a query needs it), the
        raised warnings as `BASELINE_RAISED`."""
        for table, path in self.paths.items():
            name = BASELINE_RAISED if table == RAISED else table
            engine.view_of_parquet(name, path, pq.read_schema(path).names)


def open_saved(out: Path, sources: facts.Sources, parameters: dict, key: bytes) -> Saved | str:
    """The quarter's saved evaluation, or why it cannot serve: none saved, built with other
    code, SQL or rules, other parameters in effect on `E` (`parameters`: `facts.Bound.used`
    now) or another pseudonym key, or a file changed since."""
    q = Outputs(out).quarter(sources.quarter)
    try:
        record = json.loads(q.saved_facts_record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no facts were saved for the quarter"
    except (OSError, ValueError) as e:
        return f"its record cannot be read ({type(e).__name__})"
    if record.get("code") != _code():
        return "safetynet's fact models or policy code have changed since"
    if record.get("rules") != {r.rule_id: r.rule_version for r in catalogue()}:
        return "the rules have changed since"
    if record.get("key") != _key_mark(key):
        return "the quarter was keyed with another pseudonym key"
    same = json.dumps(parameters, sort_keys=True, default=str)
    if json.dumps(record.get("parameters"), sort_keys=True, default=str) != same:
        return "the parameters in effect on the quarter's end have changed since"
    if set(record.get("saved") or ()) != set(SAVED):
        return "the facts were saved by another version of safetynet"
    files = record.get("files") or {}
    inputs = _inputs(q, sources)
    if set(files) != {Outputs(out).written(p) for p in inputs}:
        return "the quarter's staging tables are not those the facts were built from"
    stamps = [(p, files[Outputs(out).written(p)]) for p in inputs]
    stamps += [(q.saved_fact(t), record["saved"][t]) for t in SAVED]
    for path, stamp in stamps:
        try:
            if _stamp(path) != stamp:
                return f"{Outputs(out).written(path)} has changed since"
        except FileNotFoundError:
            return f"{Outputs(out).written(path)} is missing"
    baseline = Evaluation(
        str(sources.quarter),
        True,
        pl.read_parquet(q.personal_warnings).cast(WARNING_SCHEMA),  # type: ignore[arg-type]
        pl.read_parquet(q.table("rule_runs")).cast(RULE_RUN_SCHEMA),  # type: ignore[arg-type]
        pl.read_parquet(q.table("data_findings")).cast(FINDING_SCHEMA),  # type: ignore[arg-type]
        {},
        record["parameters"],
    )
    return Saved(baseline, {t: q.saved_fact(t) for t in SAVED})
