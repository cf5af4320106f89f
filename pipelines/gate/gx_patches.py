"""Where safetynet works around Great Expectations: every patch of GE's internals, behind one
context manager (`patched`), and the table (`WORKAROUNDS`) of every workaround that replaces GE
code, with the GE version it was written against and a digest of the code it replaces. (The two
others carry their own guard: `gx_deferred`, and `datadocs`' rewriting of GE's templates, which
refuses a template that no longer holds the text it rewrites.)

GE's own bookkeeping was most of a small extract's validation, and its Data Docs index read every
stored result of every quarter again. GE offers no option for either, so for the time of one call
(`patched`) a few of its internals are replaced through `unittest.mock`, each by code that gives
the same objects and ids GE gives (tests/test_gx_patches.py compares them with GE's own; for the
index, tests/test_expectations.py compares the site with the one GE builds alone):

- `validating=True` (around the validation of the batches in `expectations._validate`, not
  while the result is stored or rendered): no MD5 fingerprint of each batch (`HASH_THRESHOLD`);
  an expectation's configuration and a configuration's expectation built once per object
  (`_configurations_kept`); a metric named from plain JSON arguments as they are
  (`_plain_metric_ids`);
- `index_of=<GE context>`, `index_links=<file>` (around a Data Docs build, `datadocs.render`):
  what the index shows of each stored result read from a file kept beside the results
  (`_index_links_kept`).

The other workarounds do GE's work their own way rather than patch it: the project, suites,
definitions and results kept in GE's stores without its slow steps, and the batches' results
merged (`gx_store`); `scipy.stats`, which GE imports for expectations no contract uses, loaded on
first use (`gx_deferred`, apart because it runs before GE is imported); GE's Data Docs templates
rewritten as they are read, for pages that open with no network (`datadocs`, which refuses a
template that no longer holds the text it rewrites). Each row of
`WORKAROUNDS` names the GE functions it replaces or reads as GE does, with a digest of their
source in the version it was written for: tests/test_gx_patches.py fails when GE's source no
longer has that digest, so a GE upgrade is checked against each workaround before it is taken
(`GE_VERSION`, the release pinned in pyproject.toml).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
from great_expectations.core.id_dict import IDDict
from great_expectations.execution_engine import pandas_execution_engine
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from pipelines.core.layout import aside

GE_VERSION = "1.24.1"  # as pinned in pyproject.toml (tests/test_gx_patches.py holds them together)


@dataclasses.dataclass(frozen=True)
class Workaround:
    """One place safetynet works around GE: `ours` (`<module of gate/>.<name>`), what it replaces
    or reads as GE does (`module:qualified name` with the first 16 hex digits of the SHA-256 of its
    source, `inspect.getsource`, in `written_for`), and why."""

    ours: str
    replaces: tuple[tuple[str, str], ...]
    why: str
    written_for: str = GE_VERSION


WORKAROUNDS: tuple[Workaround, ...] = (
    # --- patches, active inside `patched` only
    Workaround(
        "gx_patches.patched",
        (
            (
                "great_expectations.execution_engine.pandas_execution_engine:"
                "PandasExecutionEngine.get_batch_data_and_markers",
                "211820aaa4b86075",
            ),
        ),
        "with validating=True, pandas_execution_engine.HASH_THRESHOLD is 0: GE fingerprints every "
        "pandas batch under 1 GB with an MD5 over all its values, a digest of personal data that "
        "is dropped before storing anyway, ~1 s per million rows",
    ),
    Workaround(
        "gx_patches._configurations_kept",
        (
            (
                "great_expectations.expectations.expectation:Expectation.configuration",
                "017b2b788132d570",
            ),
            (
                "great_expectations.expectations.expectation_configuration:"
                "ExpectationConfiguration.to_domain_obj",
                "24e276873831375b",
            ),
            (
                "great_expectations.expectations.expectation:Expectation._get_runtime_kwargs",
                "4196ca2a2cdb5bbf",
            ),
            ("great_expectations.expectations.registry:get_metric_kwargs", "1c6cab93be71d128"),
        ),
        "each read rebuilt the pydantic model: more than half of a small extract's validation",
    ),
    Workaround(
        "gx_patches._plain_metric_ids",
        (("great_expectations.core.id_dict:IDDict.to_id", "3820fd313f5a0f69"),),
        "GE passes every argument of a metric through convert_to_json_serializable before it "
        "names the metric: a third of what was left of a small extract's validation",
    ),
    Workaround(
        "gx_patches._index_links_kept",
        (
            (
                "great_expectations.data_context.data_context.abstract_data_context:"
                "AbstractDataContext.get_validation_result",
                "e3fcce1c40a4051f",
            ),
            (
                "great_expectations.render.renderer.site_builder:"
                "DefaultSiteIndexBuilder._add_validations_to_index_links",
                "c7a7e043db53677b",
            ),
        ),
        "the index read every stored result of every quarter again: the one part of a "
        "quarter's Data Docs that grew with the history",
    ),
    # --- GE's work done another way, without patching it (gx_store)
    Workaround(
        "gx_store.stored_suite",
        (
            (
                "great_expectations.core.factory.suite_factory:SuiteFactory.add_or_update",
                "b772760cadca3d7e",
            ),
        ),
        "add_or_update reads the stored suite twice and writes it every time; its list.index "
        "serialises both sides at every comparison and, comparing ids, never matches",
    ),
    Workaround(
        "gx_store.validation_definition",
        (
            (
                "great_expectations.core.factory.validation_definition_factory:"
                "ValidationDefinitionFactory.add_or_update",
                "7e0e1716f5e01554",
            ),
        ),
        "add_or_update stores the suite again and rewrites the project's configuration for the "
        "batch definition, both just stored",
    ),
    Workaround(
        "gx_store.store_result",
        (
            (
                "great_expectations.core.validation_definition:ValidationDefinition.run",
                "441a2a0ad9ab9a5d",
            ),
        ),
        "expectations._validate runs GE's Validator itself, as run does, because run would store "
        "the result as GE made it, values included: store_result stores a scrubbed one (counts) "
        "with the meta run gives it, replacing the quarter's earlier one",
    ),
    Workaround(
        "gx_store.MergedResult",
        (("great_expectations.expectations.expectation:_format_map_output", "bc59b4bb2e0c038d"),),
        "GE validates one batch at a time: the batches' counts are summed and the percentages "
        "derived as _format_map_output derives them",
    ),
)


@contextlib.contextmanager
def patched(
    *,
    validating: bool = False,
    index_of: Any = None,
    index_links: Path | None = None,
) -> Iterator[None]:
    """GE's internals patched for what runs inside, and restored after: with `validating`, the
    patches for validating batches; with `index_of` (the GE context that builds the Data Docs)
    and `index_links` (`Outputs.gx_index_links`), the index's. One context manager with two sets
    of patches, not one set, because each is active exactly where it saves time and nowhere
    else: the validation's around GE's validation of the batches only, the index's around the
    one context's Data Docs build only (it patches that context object, not GE's class)."""
    if (index_of is None) != (index_links is None):
        raise ValueError("the Data Docs index is patched with both its context and its file")
    with contextlib.ExitStack() as patches:
        if validating:
            patches.enter_context(mock.patch.object(pandas_execution_engine, "HASH_THRESHOLD", 0))
            patches.enter_context(_configurations_kept())
            patches.enter_context(_plain_metric_ids())
        if index_of is not None and index_links is not None:
            patches.enter_context(_index_links_kept(index_of, index_links))
        yield


# --- validating -------------------------------------------------------------------------------


@contextlib.contextmanager
def _configurations_kept() -> Iterator[None]:
    """GE goes back and forth between an expectation and its configuration dozens of times
    while it builds the metric graph of one validation: `_get_runtime_kwargs` reads
    `Expectation.configuration` once per key, each read serialising the pydantic model again,
    and `get_metric_kwargs` makes a new expectation of the configuration each time
    (`to_domain_obj`, validating the model again). That was more than half of a small extract's
    validation time. Neither changes while it is validated (GE reads them, and copies a
    configuration before the one change it makes, the batch id), so for this call each is built
    once per object and the same result handed out again. The objects are held, so no other
    can take one's id meanwhile, and let go when the call ends."""
    kept: dict[int, tuple[Any, Any]] = {}

    def once(build):
        def get(self):
            hit = kept.get(id(self))
            if hit is None:
                hit = kept[id(self)] = (self, build(self))
            return hit[1]

        return get

    try:
        with (
            mock.patch.object(
                Expectation, "configuration", property(once(Expectation.configuration.fget))
            ),
            mock.patch.object(
                ExpectationConfiguration,
                "to_domain_obj",
                once(ExpectationConfiguration.to_domain_obj),
            ),
        ):
            yield
    finally:
        kept.clear()


@contextlib.contextmanager
def _plain_metric_ids() -> Iterator[None]:
    """GE names each metric of a validation by the MD5 of its arguments as JSON
    (`IDDict.to_id`), passing every value through `convert_to_json_serializable` first, which
    for a None or a long value set tests each element against numpy's types: a third of what
    is left of a small extract's validation. Where every value is already plain JSON (str, int,
    bool, None, a number, lists and str-keyed dicts of them) that conversion changes nothing, so
    for this call such arguments are dumped as they are, to the same id; any other goes GE's
    way."""
    original = IDDict.to_id

    def to_id(self, id_keys=None, id_ignore_keys=None):
        keys = set(self.keys() if id_keys is None else id_keys) - set(
            self._id_ignore_keys if id_ignore_keys is None else id_ignore_keys
        )
        if len(keys) > 1:
            chosen = {k: self[k] for k in keys}
            if _plain_json(chosen):
                text = json.dumps(chosen, sort_keys=True).encode("utf-8")
                return hashlib.md5(text, usedforsecurity=False).hexdigest()
        return original(self, id_keys, id_ignore_keys)

    with mock.patch.object(IDDict, "to_id", to_id):
        yield


def _plain_json(value: Any) -> bool:
    """Whether `value` is JSON that GE's `convert_to_json_serializable` returns unchanged (but
    for tuples as lists, which JSON writes alike)."""
    kind = type(value)
    if kind in (str, int, bool, type(None)):
        return True
    if kind is float:
        return not math.isnan(value)  # GE writes NaN as null
    if kind in (list, tuple):
        return all(_plain_json(v) for v in value)
    if kind is dict:
        return all(type(k) is str and _plain_json(v) for k, v in value.items())
    return False


# --- the Data Docs index ----------------------------------------------------------------------

# What GE's index builder reads of a stored validation (`_add_validations_to_index_links`): its
# success, and in its meta the batch's kwargs and spec and the asset's name.
_INDEX_META = ("batch_kwargs", "batch_spec", "active_batch_definition")


@contextlib.contextmanager
def _index_links_kept(gx_context, path: Path) -> Iterator[None]:
    """GE builds the Data Docs index by reading every stored validation of every quarter again
    (`get_validation_result` for each), only for its success and three entries of its meta: the
    one part of a quarter's Data Docs that grew with the history. For this build those are read
    from `path` (`<gx>/uncommitted/index_links.json`) where a result is there, and a result that
    is not is read as GE reads it and added. A result is never changed once stored (a re-run
    stores a new one under a new run time), so what is kept stays true; a file that cannot be
    read is built again from the results."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = {}
    if not isinstance(kept, dict):
        kept = {}
    read = gx_context.get_validation_result
    added = False

    def get_validation_result(
        batch_identifier=None, expectation_suite_name=None, run_id=None, **kwargs
    ):
        nonlocal added
        name = json.dumps(
            [expectation_suite_name, run_id.run_name, str(run_id.run_time), str(batch_identifier)]
        )
        entry = kept.get(name)
        if entry is None:
            validation = read(
                batch_identifier=batch_identifier,
                expectation_suite_name=expectation_suite_name,
                run_id=run_id,
                **kwargs,
            )
            if not isinstance(validation, ExpectationSuiteValidationResult):
                return validation
            meta = validation.meta or {}
            kept[name] = entry = {
                "success": validation.success,
                "meta": {k: meta[k] for k in _INDEX_META if k in meta},
            }
            added = True
        return ExpectationSuiteValidationResult(
            success=entry["success"],
            results=[],
            suite_name=expectation_suite_name,
            meta=copy.deepcopy(entry["meta"]),
        )

    with mock.patch.object(gx_context, "get_validation_result", get_validation_result):
        yield
    if added:
        tmp = aside(path)
        tmp.write_text(json.dumps(kept, default=str), encoding="utf-8")
        os.replace(tmp, path)


__all__ = ["GE_VERSION", "WORKAROUNDS", "Workaround", "patched"]
