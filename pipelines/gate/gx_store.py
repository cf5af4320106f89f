"""Great Expectations' project at `<out>/gx`, kept as GE keeps it but without its slow steps: one
of GE's workarounds (`gx_patches.WORKAROUNDS` lists each with the GE code it replaces).

- The project: opened quiet (no usage statistics, progress bars or configuration variables), its
  Data Docs site offline (`datadocs`) at `<out>/data_docs`, recorded relative to the project so
  that a copied or moved `<out>` keeps working (`context`); opened once per run (`RunContext`);
  written by one process at a time (`one_writer`).
- What it stores, each written only when it changed: the data source and the extract's batch
  definition (`batch_definition`), the suite (`stored_suite`, GE's `suites.add_or_update` without
  its re-reads and rewrites), the quarter's validation definition (`validation_definition`).
- The result: the batches' results merged into one with the whole extract's counts
  (`MergedResult`), stored with counts only, replacing the quarter's earlier one for the extract
  (`store_result`). No value from the data (identity numbers and names are personal data) is
  stored or rendered.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import great_expectations as gx
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.validator.validator import calc_validation_statistics

from pipelines.core import idnumbers
from pipelines.core.layout import Outputs

DATASOURCE = "safetynet"
BATCH_DEFINITION = "whole_dataframe"
SITE = "local_site"
# GE loads a site's views by module and class name: the offline views of `gate/datadocs.py`
# (which imports this module, so they are named here rather than imported)
_OFFLINE_VIEWS = "pipelines.gate.datadocs"
# What a stored or rendered result may keep of each expectation's `result`: numbers, no values.
STORED_RESULT_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
    "missing_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
)


# --- the project ------------------------------------------------------------------------------


def site_config(out: Path) -> dict:
    """The Data Docs site: GE's site builder with the offline views (`datadocs.OfflinePageView`,
    `datadocs.OfflineIndexPageView`), no how-to buttons, no call-to-action footer. Its folder,
    `<out>/data_docs`, is given relative to the project's folder `<out>/gx` (GE joins a relative
    `base_directory` to the project's root), so the configuration holds no path of `<out>`."""
    outputs = Outputs(out)
    page = {"view": {"module_name": _OFFLINE_VIEWS, "class_name": "OfflinePageView"}}
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": os.path.relpath(outputs.data_docs, outputs.gx_config.parent),
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "show_cta_footer": False,
            "view": {"module_name": _OFFLINE_VIEWS, "class_name": "OfflineIndexPageView"},
        },
        "site_section_builders": {
            "expectations": dict(page),
            "validations": dict(page),
            "profiling": dict(page),
        },
    }


def context(out: Path):
    """The file context at `<out>/gx`, its Data Docs site at `<out>/data_docs` (`site_config`),
    quiet: no usage statistics, no progress bars, no configuration variables. The configuration
    is written only when it changes (a project written elsewhere or by an earlier version is
    brought to it), so concurrent runs do not rewrite it."""
    out = Path(out).resolve()
    root = Outputs(out).gx_project
    root.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", project_root_dir=str(root))
    changed = False
    if ctx.list_data_docs_sites() != {SITE: site_config(out)}:
        ctx.variables.data_docs_sites = {SITE: site_config(out)}
        changed = True
    bars = ctx.variables.progress_bars
    bars = bars.to_dict() if isinstance(bars, ProgressBarsConfig) else dict(bars or {})
    if bars.get("globally", True) or bars.get("metric_calculations", True):
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        changed = True
    if ctx.variables.analytics_enabled is not False:
        ctx.variables.analytics_enabled = False
        changed = True
    # no configuration-variables file: the project substitutes none, and GE would read and
    # parse that YAML file again at every substitution (229 times in a `test` quarter)
    if ctx.variables.config_variables_file_path is not None:
        ctx.variables.config_variables_file_path = None
        changed = True
    if changed:
        ctx.variables.save()
        ctx = gx.get_context(mode="file", project_root_dir=str(root))
    return ctx


class RunContext:
    """A run's Great Expectations context: opened once and used by every step of the run, and
    opened again only when the project's configuration changed on disk since this process last
    read or wrote it (another process — a parallel step — added an asset: a context holding the
    old configuration would write it back and lose that asset). Use it with the folder's lock
    held (`expectations.validate` and `datadocs.build_data_docs` do)."""

    def __init__(self, out: Path):
        self.out = Path(out).resolve()
        self._context = None
        self._stamp: tuple[int, int] | None = None

    def _config_stamp(self) -> tuple[int, int] | None:
        try:
            st = Outputs(self.out).gx_config.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def get(self):
        if self._context is None or self._config_stamp() != self._stamp:
            self._context = context(self.out)
            self._stamp = self._config_stamp()
        return self._context

    def written(self) -> None:
        """This process's own writes are in the context already: no need to reopen for them."""
        self._stamp = self._config_stamp()


def context_of(out: Path, run: RunContext | None):
    """The run's context, or one opened for this call."""
    return run.get() if run is not None else context(out)


@contextlib.contextmanager
def one_writer(out: Path):
    """One GE writer per output folder at a time, across processes: GE rewrites
    `great_expectations.yml` (not atomically) when it adds an asset, and Data Docs rebuild one
    index; parallel Dagster steps would lose each other's updates. It also keeps one GE
    validation's memory at a time."""
    lock_path = Outputs(Path(out).resolve()).gx_lock
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --- what the project stores ------------------------------------------------------------------


def batch_definition(gx_context, asset_name: str):
    """Data source `safetynet` (pandas), one dataframe asset per extract, a whole-dataframe
    batch definition. Got if they exist: `add_or_update_pandas` would drop the other assets."""
    try:
        source = gx_context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, gx.exceptions.DataContextError):
        source = gx_context.data_sources.add_pandas(DATASOURCE)
    try:
        asset = source.get_asset(asset_name)
    except LookupError:
        asset = source.add_dataframe_asset(asset_name)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)


def _expectation_form(e) -> tuple[str, dict]:
    """An expectation as it is compared: its kind and settings, without the id GE gives it
    when it is stored (`Expectation.__eq__` compares the id too) or its rendering, and an empty
    meta or notes the same as none (as GE's own comparison has them)."""
    d = e.dict(exclude={"id", "rendered_content"})
    d["meta"], d["notes"] = d.get("meta") or None, d.get("notes") or None
    return type(e).__name__, d


def _same_suite(a: gx.ExpectationSuite, b: gx.ExpectationSuite) -> bool:
    """The same expectations, in order, and the same meta and notes."""
    return (
        a.name == b.name
        and (a.meta or None) == (b.meta or None)
        and (a.notes or None) == (b.notes or None)
        and [_expectation_form(e) for e in a.expectations]
        == [_expectation_form(e) for e in b.expectations]
    )


def _form_key(e) -> str:
    return json.dumps(_expectation_form(e), sort_keys=True, default=str)


def stored_suite(gx_context, suite: gx.ExpectationSuite) -> gx.ExpectationSuite:
    """`suite` as stored: written only when the stored one differs (a contract or the
    quarter's sets changed). `suites.add_or_update` reads the stored suite twice and writes it
    every time, 30-40 ms an extract, for a suite that is mostly the last quarter's."""
    try:
        existing = gx_context.suites.get(name=suite.name)
    except gx.exceptions.DataContextError:
        return gx_context.suites.add(suite)
    if _same_suite(existing, suite):
        return existing
    # The steps of `suites.add_or_update`, but an unchanged expectation keeps its id by a
    # lookup of its form: GE's finds it with `list.index`, whose equality serialises both sides
    # at every comparison (0.1 s a suite) and, comparing ids too, never matches an expectation
    # built anew. The store gives the others new ids, as GE's does.
    ids: dict[str, list[str]] = {}
    for e in existing.expectations:
        ids.setdefault(_form_key(e), []).append(e.id)
    for e in suite.expectations:
        same = ids.get(_form_key(e))
        e.id = same.pop(0) if same else None
    suite.id = existing.id
    store = gx_context.expectations_store
    store.update(key=store.get_key(name=suite.name, id=suite.id), value=suite)
    return gx_context.suites.get(name=suite.name)


def validation_definition(gx_context, name: str, batch, suite: gx.ExpectationSuite):
    """The quarter's validation definition of the extract, added once; a re-run of the quarter
    keeps it if it names the same suite and batch definition, else replaces it.
    (`validation_definitions.add_or_update` stores the suite again and rewrites the project's
    configuration for the batch definition, which `stored_suite` and `batch_definition` have
    just stored.)"""
    definitions = gx_context.validation_definitions
    definition = gx.ValidationDefinition(name=name, data=batch, suite=suite)
    try:
        return definitions.add(definition)
    except gx.exceptions.DataContextError:  # the quarter run again
        existing = definitions.get(name=name)
        if existing.suite.id == suite.id and existing.data.id == batch.id:
            return existing
        definitions.delete(name=name)
        return definitions.add(definition)


# --- the result -------------------------------------------------------------------------------


class MergedResult:
    """The batches' results of one suite merged into one, as if GE had seen the whole extract:
    per expectation the counts summed and the percentages recomputed (`_format_map_output`'s
    definitions), success only if every batch succeeded (every expectation here has
    `mostly` = 1, so that is the whole extract's success), the first exception kept, and the
    statistics recomputed over the merged expectations. The first batch's result is the
    template (suite, configurations, meta); its per-batch values are replaced."""

    _COUNTS = ("element_count", "unexpected_count", "missing_count")

    def __init__(self, first, batch_id: str | None):
        self.template = first
        self.batch_id = batch_id
        n = len(first.results)
        self.counts: list[dict[str, int] | None] = [{} for _ in range(n)]
        self.success = [True] * n
        self.exceptions: list[Any] = [None] * n
        self.indexes: list[list[int] | None] = [None] * n

    def add(self, batch, *, offset: int, indexes: bool) -> None:
        if len(batch.results) != len(self.counts):  # pragma: no cover - one suite throughout
            raise RuntimeError("batches of one validation returned different expectations")
        for i, r in enumerate(batch.results):
            if r.expectation_config.type != self.template.results[i].expectation_config.type:
                raise RuntimeError("batches of one validation returned expectations out of order")
            res = r.result or {}
            self.success[i] = self.success[i] and bool(r.success)
            if self.exceptions[i] is None and exception_summary(r.exception_info):
                self.exceptions[i] = r.exception_info
            counts = self.counts[i]
            if counts is not None and "unexpected_count" in res and "element_count" in res:
                for k in self._COUNTS:
                    if k in res and res[k] is not None:
                        counts[k] = counts.get(k, 0) + int(res[k])
            else:  # a batch without counts (GE raised): no count is better than a wrong one
                self.counts[i] = None
            if indexes and "unexpected_index_list" in res:
                found = self.indexes[i] = self.indexes[i] or []
                found.extend(offset + int(x) for x in res["unexpected_index_list"])

    def result(self):
        results = self.template
        for i, r in enumerate(results.results):
            r.success = self.success[i]
            if self.exceptions[i] is not None:
                r.exception_info = self.exceptions[i]
            r.result = _percentages(self.counts[i]) if self.counts[i] is not None else {}
        stats = calc_validation_statistics(results.results)
        results.success = stats.success
        results.statistics = {
            "evaluated_expectations": stats.evaluated_expectations,
            "successful_expectations": stats.successful_expectations,
            "unsuccessful_expectations": stats.unsuccessful_expectations,
            "success_percent": stats.success_percent,
        }
        return results


def _percentages(counts: dict[str, int]) -> dict[str, Any]:
    """Counts plus the percentages GE derives from them (`expectation._format_map_output`)."""
    element = counts.get("element_count", 0)
    unexpected = counts.get("unexpected_count", 0)
    out: dict[str, Any] = {"element_count": element, "unexpected_count": unexpected}
    total = unexpected / element * 100 if element else None
    if "missing_count" in counts:
        missing = counts["missing_count"]
        nonmissing = element - missing
        percent = unexpected / nonmissing * 100 if element and nonmissing else None
        out.update(
            unexpected_percent=percent,
            missing_count=missing,
            missing_percent=missing / element * 100 if element else None,
            unexpected_percent_total=total,
            unexpected_percent_nonmissing=percent,
        )
    else:
        out["unexpected_percent"] = total
    return out


def exception_summary(info: Any) -> str | None:
    """`Type: message` of an exception GE caught inside an expectation (None if none), scrubbed
    of anything shaped like an identity number."""
    if not info:
        return None
    infos = info.values() if "raised_exception" not in info else [info]
    for i in infos:
        if isinstance(i, dict) and i.get("raised_exception"):
            return idnumbers.scrub(str(i.get("exception_message") or "exception"))
    return None


def _scrub(r) -> None:
    """Keep counts; drop every value, index and traceback GE put in an expectation result."""
    res = r.result or {}
    r.result = {k: res[k] for k in STORED_RESULT_KEYS if k in res}
    info = r.exception_info or {}
    if "raised_exception" in info:
        info = {"": info}
    raised = any(isinstance(i, dict) and i.get("raised_exception") for i in info.values())
    r.exception_info = {
        "raised_exception": raised,
        "exception_message": "raised inside Great Expectations; see the pipeline log"
        if raised
        else None,
        "exception_traceback": None,
    }


def store_result(
    gx_context, results, batch_id: str | None, *, suite: str, name: str, definition, **meta: Any
) -> ValidationResultIdentifier:
    """The merged `results` (`MergedResult.result()`) of the validation `name`
    (`<quarter>.<dept>.<extract>`) of `suite`, stored with the meta `ValidationDefinition.run`
    gives a result (and `meta`), with counts only (`_scrub`: read what is wanted of `results`
    before), in place of the quarter's earlier result of the extract; returns its key."""
    run_id = RunIdentifier(run_name=name, run_time=dt.datetime.now(dt.UTC))
    results.meta.update(
        validation_id=definition.id,
        checkpoint_id=None,
        run_id=run_id,
        validation_time=run_id.run_time,
        batch_parameters={"dataframe": "<DATAFRAME>"},
        **meta,
    )
    results.meta.get("batch_markers", {}).pop("pandas_data_fingerprint", None)
    for r in results.results:
        _scrub(r)
    store = gx_context.validation_results_store
    # one validation per extract per quarter: an earlier one of this quarter is replaced. Only
    # the folder of this suite's results for this quarter is listed (`<suite as folders>/<run
    # name>/`, as the page folders are), not every result of every quarter.
    for found in store.store_backend.list_keys(prefix=(*suite.split("."), name)):
        old = store.tuple_to_key(found)
        if old.expectation_suite_identifier.name == suite and old.run_id.run_name == name:
            store.remove_key(old)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite),
        run_id=run_id,
        batch_identifier=batch_id,
    )
    store.set(key, results)
    return key


__all__ = [
    "BATCH_DEFINITION",
    "DATASOURCE",
    "MergedResult",
    "RunContext",
    "SITE",
    "STORED_RESULT_KEYS",
    "batch_definition",
    "context",
    "context_of",
    "exception_summary",
    "one_writer",
    "site_config",
    "stored_suite",
    "store_result",
    "validation_definition",
]
