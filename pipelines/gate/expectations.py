"""Great Expectations over the data contract: the one module that imports great_expectations.

The suite is compiled from the same `kinds.Check` objects the gate evaluates, one expectation
per check, so GE's unexpected rows and the gate's quarantined rows agree row for row
(tests/test_expectations.py shows it on a file with planted errors).

- Native expectations where a check kind says GE's is an exact equivalent of its Polars check
  (`Kind.expectation`): `required` (not null), `codes` and `county` (in set; nulls pass, as in
  the gate), `type_money`/`type_int`/`type_decimal` (the same regex constants), and, when the
  whole extract is validated as one frame, `duplicate_key` when every key column is one GE sees
  exactly as the gate compares it (id, code, county, text).
- Every other check is one of two custom expectations whose metric runs the gate's own Polars
  code (`checks.evaluate`) on the columns GE hands it: a column map for a check reading one
  column, a multicolumn map (`ignore_row_if="never"`, the Polars code decides about nulls) for a
  check reading several.

Streaming: the extract is validated in batches of at most `batch_rows` rows, taken from one
streaming pass over what the gate hands over, so a province's registry never sits in memory whole:
the rows its second pass wrote with its own flag of every check (`checks.Prepared`, whose flags the
custom metrics take as they are), or, when that pass did not run, the gate's checked source
(`checks.evaluate` of the scan, the checks evaluated again on each batch). The two checks that
compare rows (`duplicate_key`, `group_agreement`) were settled over the whole extract by
`checks.cross_row_context`; with those sets in the context they compile to the custom expectation,
a per-row membership test that gives the same answer in any batch (GE's native uniqueness would
only see its own batch). The batches' results are merged into ONE validation per extract per
quarter with exact whole-extract counts.

The custom metrics need the Python objects of the validation running (its contract, the context
with the routed keys and the settled sets, the flags of the batch): GE hands a metric only the
serialisable arguments of its expectation, so `validate` makes them the current validation
(`_CURRENT`, a context variable set for the call and reset after it) and the expectation carries
names of them only — a name, never anything derived from the keys (identity numbers).

GE's own bookkeeping was most of a small extract's validation: it rebuilt each expectation's
configuration, and the expectation of each configuration, dozens of times, and named every metric
by passing its arguments element by element through a JSON conversion. While `_validate` runs
(only then, as with GE's fingerprint), each is built once per object (`_configurations_kept`) and
plain JSON arguments are named as they are (`_plain_metric_ids`): the same objects and ids GE
makes, tested against GE's own.

One validation per extract per quarter, named `<quarter>.<dept>.<extract>`, in a file context at
`<out>/gx`, with Data Docs at `<out>/data_docs/index.html` (outputs.md §4). Stored results keep
counts only: no value from the data (identity numbers and names are personal data) is stored or
rendered.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import logging
import math
import os
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
import polars as pl
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
from great_expectations.core.id_dict import IDDict
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.execution_engine import (
    PandasExecutionEngine,
    pandas_execution_engine,
)
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    Expectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
    multicolumn_condition_partial,
)
from great_expectations.validator.v1_validator import Validator
from great_expectations.validator.validator import calc_validation_statistics

from pipelines.core import idnumbers
from pipelines.core.contracts import Contract, as_sent_by

# `row_checks`: the module; `checks` is what the gate compiled (a list of `Check`), as elsewhere.
from pipelines.core.faults import crash_point
from pipelines.core.layout import Outputs, aside
from pipelines.core.quarters import Quarter
from pipelines.gate import checks as row_checks
from pipelines.gate import datadocs
from pipelines.gate.kinds import Check, CheckContext, kind_of

logger = logging.getLogger(__name__)

DATASOURCE = "safetynet"
BATCH_DEFINITION = "whole_dataframe"
SITE = "local_site"
# Counts only: GE keeps no example values (partial_unexpected_list stays empty).
DEFAULT_RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
# What a stored or rendered result may keep of each expectation's `result`: numbers, no values.
_STORED_RESULT_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
    "missing_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
)


# --- the frame GE validates, batch by batch ---------------------------------------------------


def ge_frame(checked: pl.DataFrame, contract: Contract) -> pd.DataFrame:
    """The frame GE validates, from the gate's checked rows (`checks.evaluate`: the received
    text under canonical names and the `__v` typed columns), or from one batch of them.

    Row order is kept and the index is a RangeIndex, so GE's `unexpected_index_list` are row
    positions in the frame (in the batch: `validate` adds the batch's first position).
    """
    columns = row_checks.ge_columns(contract, set(checked.columns))
    return checked.select(columns).to_pandas()  # via Arrow


def batches(
    source: pl.LazyFrame | pl.DataFrame | row_checks.Prepared, contract: Contract, batch_rows: int
) -> Iterator[pl.DataFrame]:
    """The GE columns of `source` in consecutive batches of at most `batch_rows` rows, in row
    order, without the whole in memory (a `Prepared` source: its columns as they are, the
    gate's flags included).

    A LazyFrame is run ONCE, by the streaming engine (`LazyFrame.collect_batches`), projected to
    the columns GE reads first (so the gate's flag columns are not computed again); the engine
    holds a few chunks ahead of the consumer and waits for it, so memory stays bounded by the
    batch size, not by the extract. A CSV scan cannot seek to a row: repeated `slice(offset, n)`
    would re-read the file up to each batch. A DataFrame is cut into zero-copy slices.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    prepared = isinstance(source, row_checks.Prepared)
    frame = source.frame if prepared else source
    if isinstance(frame, pl.DataFrame):
        columns = None if prepared else row_checks.ge_columns(contract, set(frame.columns))
        for part in frame.iter_slices(batch_rows):
            yield part if columns is None else part.select(columns)
        return
    if not prepared:
        frame = frame.select(row_checks.ge_columns(contract, set(frame.collect_schema().names())))
    stream = frame.collect_batches(chunk_size=batch_rows, maintain_order=True, engine="streaming")
    yield from _rebatch(stream, batch_rows)


def _rebatch(frames: Iterable[pl.DataFrame], n: int) -> Iterator[pl.DataFrame]:
    """Batches of exactly `n` rows (the last one shorter), whatever sizes the engine hands out:
    `chunk_size` is what the engine buffers before it gives a chunk, not a promise."""
    pending: list[pl.DataFrame] = []
    rows = 0
    for f in frames:
        if not f.height:
            continue
        pending.append(f)
        rows += f.height
        while rows >= n:
            whole = pl.concat(pending) if len(pending) > 1 else pending[0]
            yield whole.slice(0, n)
            rest = whole.slice(n)
            pending, rows = ([rest] if rest.height else []), rest.height
    if rows:
        yield pl.concat(pending) if len(pending) > 1 else pending[0]


# --- custom expectations: the gate's Polars code as GE metrics -------------------------------


@dataclasses.dataclass
class _Validation:
    """The validation running: what its custom metrics need besides the columns GE hands them.
    `flags` are the custom checks of the batch being validated, evaluated together once: GE asks
    each custom expectation's metric in turn, and evaluating the gate's Polars code once per
    batch instead of once per expectation makes validation several times faster. When that
    evaluation fails, each custom expectation evaluates its own check instead, so GE reports an
    error against the expectations it breaks, not as one opaque failure of them all."""

    contract: Contract
    ctx: CheckContext
    checks: dict[str, Check]  # by reason
    height: int = 0
    flags: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def evaluate_batch(
        self, part: pl.DataFrame, custom: list[Check], given: Iterable[str] = ()
    ) -> None:
        """The custom checks' flags of the batch: the gate's own (the columns `given`, of a
        `Prepared` source), the others evaluated here, all together."""
        present = set(part.columns)
        custom = [c for c in custom if set(c.columns) <= present]
        self.height = part.height
        given = set(given) & present
        self.flags = {c.reason: part[c.reason].to_numpy() for c in custom if c.reason in given}
        custom = [c for c in custom if c.reason not in self.flags]
        if not custom:
            return
        try:
            flags = (
                row_checks.evaluate(
                    part.lazy().drop(sorted(given)), self.contract, self.ctx, custom
                )
                .select([c.reason for c in custom])
                .collect()
            )
        except Exception as e:  # noqa: BLE001 - each expectation then evaluates its own check
            logger.warning(
                "%s %s: the batch's checks failed together (%s: %s); each expectation "
                "evaluates its own",
                self.ctx.quarter,
                self.contract.name,
                type(e).__name__,
                idnumbers.scrub(str(e)),
            )
            return
        self.flags.update({n: flags[n].to_numpy() for n in flags.columns})


_CURRENT: contextvars.ContextVar[_Validation | None] = contextvars.ContextVar(
    "safetynet_validation", default=None
)


def _routed_keys_token(keys: frozenset[str] | None) -> str | None:
    """A short, stable name for a set of routed warning keys (the set itself can be large and
    does not belong in a suite): the same keys give the same name, so a re-run leaves the suite
    unchanged."""
    if keys is None:
        return None
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
    return f"keys-{len(keys)}-{digest}"


def settled(ctx: CheckContext, contract: Contract, present: Iterable[str] | None = None) -> bool:
    """Whether the context carries what `checks.cross_row_context` settled for every
    row-comparing check of the contract that the present columns allow."""
    if ctx.settled is None:
        return False
    have = {c.name for c in contract.columns} if present is None else set(present)
    return all(
        c.reason in ctx.settled
        for c in row_checks.compile_checks(contract, ctx)
        if kind_of(c).compares_rows and set(c.columns) <= have
    )


def _passes(frame: pd.DataFrame, reason: str, contract: str, quarter: str) -> pd.Series:
    """True where the row passes the check: the gate's own failure expression, negated."""
    current = _CURRENT.get()
    if current is None or current.contract.name != contract or str(current.ctx.quarter) != quarter:
        raise RuntimeError(
            f"the contract rule {reason} of {contract} {quarter} is evaluated only inside "
            "expectations.validate"
        )
    if reason in current.flags:
        positions = frame.index.to_numpy()  # GE keeps the batch's RangeIndex (nulls dropped)
        if positions.size == 0 or positions.max() < current.height:
            return pd.Series(~current.flags[reason][positions], index=frame.index, dtype=bool)
    check = current.checks[reason]
    lf = pl.from_pandas(frame).lazy().with_columns(pl.all().cast(pl.String))
    failed = (
        row_checks.evaluate(lf, current.contract, current.ctx, [check])
        .select(check.reason)
        .collect()
        .to_series()
    )
    return pd.Series(~failed.to_numpy(), index=frame.index, dtype=bool)


_RULE_KEYS = ("reason", "contract", "quarter", "routed_keys", "cross_row")


class ColumnValuesPassContractRule(ColumnMapMetricProvider):
    condition_metric_name = "column_values.safetynet_contract_rule"
    condition_value_keys = _RULE_KEYS

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, reason, contract, quarter, routed_keys=None, cross_row=None, **kwargs):
        return _passes(column.to_frame(), reason, contract, quarter)


class MulticolumnValuesPassContractRule(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.safetynet_contract_rule"
    condition_value_keys = _RULE_KEYS
    condition_domain_keys = (
        "batch_id",
        "table",
        "column_list",
        "row_condition",
        "condition_parser",
        "ignore_row_if",
    )

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls, column_list, reason, contract, quarter, routed_keys=None, cross_row=None, **kwargs
    ):
        return _passes(column_list, reason, contract, quarter)


class ExpectColumnValuesToPassContractRule(ColumnMapExpectation):
    """Values of one column pass a row check of the data contract (`gate/kinds.py`), evaluated
    by the same Polars code the gate quarantines with. Nulls are not checked (no single-column
    rule fails a null; `required` is its own expectation)."""

    reason: str  # the contract rule, which is also the gate's quarantine reason
    contract: str  # `<dept>.<extract>`
    quarter: str  # e.g. `2026Q3`: the checks depending on the quarter end
    routed_keys: str | None = None  # name of the routed warning keys (feedback)
    cross_row: str | None = None  # name of the settled duplicated keys / disagreeing groups

    map_metric: ClassVar[str] = "column_values.safetynet_contract_rule"
    success_keys = (*_RULE_KEYS, "mostly")


class ExpectMulticolumnValuesToPassContractRule(MulticolumnMapExpectation):
    """Rows pass a check of the data contract reading several columns (the judged column
    first), evaluated by the same Polars code the gate quarantines with. Use with
    `ignore_row_if="never"`: the Polars code decides about nulls (`required_unless` fails the
    row whose value is null)."""

    reason: str
    contract: str
    quarter: str
    routed_keys: str | None = None
    cross_row: str | None = None

    map_metric: ClassVar[str] = "multicolumn_values.safetynet_contract_rule"
    success_keys = (*_RULE_KEYS, "mostly")


# --- the suite --------------------------------------------------------------------------------


def suite_name(contract: Contract, department: str | None = None) -> str:
    return f"{department or contract.department}.{contract.extract}"


def expectation_for(
    check: Check, contract: Contract, ctx: CheckContext, *, cross_row: str | None = None
) -> gxe.Expectation:
    """The one expectation a check compiles to. With `cross_row` (the name of the sets settled
    over the whole extract) the two row-comparing checks are membership tests run by the
    gate's code, right in any batch; without it they compare the rows of the one frame."""
    meta = {"reason": check.reason, "expected": check.expected}
    columns = list(dict.fromkeys(check.columns))
    # Data Docs show the description instead of GE's own sentence: the contract rule (the
    # quarantine reason) and what was expected, in the words of the quality report.
    description = f"{', '.join(columns)}: {check.expected} (contract rule {check.reason})"
    common = {
        "meta": meta,
        "notes": f"Quarantine reason {check.reason}: expected {check.expected}.",
        "description": description.replace("$", "$$"),
    }
    kind = kind_of(check)
    native = kind.expectation(check, contract, settled=cross_row is not None)
    if native is not None:
        return getattr(gxe, native.expectation)(**native.arguments, **common)
    rule = {
        "reason": check.reason,
        "contract": contract.name,
        "quarter": str(ctx.quarter),
        "routed_keys": _routed_keys_token(ctx.routed_warning_keys),
    }
    if kind.compares_rows and cross_row is not None:
        rule["cross_row"] = cross_row
    if len(columns) == 1:
        return ExpectColumnValuesToPassContractRule(column=columns[0], **rule, **common)
    return ExpectMulticolumnValuesToPassContractRule(
        column_list=columns, ignore_row_if="never", **rule, **common
    )


def build_suite(
    contract: Contract,
    ctx: CheckContext,
    checks: list[Check],
    *,
    present: Iterable[str] | None = None,
    department: str | None = None,
) -> gx.ExpectationSuite:
    """The suite `<dept>.<extract>`: one expectation per check whose columns are all `present`
    (default: every contract column), as the gate leaves out checks on missing columns.

    When `ctx` carries the cross-row sets (`settled`), the row-comparing checks are membership
    tests of them, named `<quarter>.<dept>.<extract>` (batch by batch validation); otherwise
    those checks compare the rows of the one frame validated."""
    have = {c.name for c in contract.columns} if present is None else set(present)
    cross_row = (
        f"{ctx.quarter}.{suite_name(contract, department)}"
        if settled(ctx, contract, have)
        else None
    )
    wanted = [
        expectation_for(c, contract, ctx, cross_row=cross_row)
        for c in checks
        if set(c.columns) <= have
    ]
    # Passed to the constructor, not `add_expectation` (which looks the suite up in the current
    # context's store once per expectation).
    suite = gx.ExpectationSuite(
        name=suite_name(contract, department),
        expectations=wanted,
        meta={"contract": contract.name, "contract_version": contract.version},
    )
    if len(suite.expectations) != len(wanted):  # GE logs and drops an invalid expectation
        raise ValueError(
            f"{suite.name}: GE refused {len(wanted) - len(suite.expectations)} "
            "of the expectations compiled from the contract"
        )
    return suite


def _custom_reasons(suite: gx.ExpectationSuite) -> set[str]:
    custom = (ExpectColumnValuesToPassContractRule, ExpectMulticolumnValuesToPassContractRule)
    return {e.meta["reason"] for e in suite.expectations if isinstance(e, custom)}


# --- the file context, validation and Data Docs -----------------------------------------------


def _site_config(out: Path) -> dict:
    return datadocs.site_config(Outputs(out).data_docs)


def context(out: Path):
    """The file context at `<out>/gx`, its Data Docs site at `<out>/data_docs` (absolute),
    quiet: no usage statistics, no progress bars, no configuration variables. The configuration
    is written only when it changes, so concurrent runs do not rewrite it."""
    out = Path(out).resolve()
    root = Outputs(out).gx_project
    root.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", project_root_dir=str(root))
    changed = False
    if ctx.list_data_docs_sites() != {SITE: _site_config(out)}:
        ctx.variables.data_docs_sites = {SITE: _site_config(out)}
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
    held (`validate` and `build_data_docs` do)."""

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


def _context_of(out: Path, run: RunContext | None):
    return run.get() if run is not None else context(out)


@contextlib.contextmanager
def _one_writer(out: Path):
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


def _batch_definition(gx_context, asset_name: str):
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


def _stored_suite(gx_context, suite: gx.ExpectationSuite) -> gx.ExpectationSuite:
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


def _form_key(e) -> str:
    return json.dumps(_expectation_form(e), sort_keys=True, default=str)


def _validation_definition(gx_context, name: str, batch, suite: gx.ExpectationSuite):
    """The quarter's validation definition of the extract, added once; a re-run of the quarter
    keeps it if it names the same suite and batch definition, else replaces it.
    (`validation_definitions.add_or_update` stores the suite again and rewrites the project's
    configuration for the batch definition, which `_stored_suite` and `_batch_definition` have
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


def validate(
    out: Path,
    contract: Contract,
    quarter: Quarter | str,
    source: pl.LazyFrame | pl.DataFrame | row_checks.Prepared | None,
    ctx: CheckContext,
    checks: list[Check],
    *,
    batch_rows: int = 1_000_000,
    result_format: dict | str | None = None,
    department: str | None = None,
    update_data_docs: bool = True,
    raise_errors: bool = False,
    gx_context=None,
) -> dict:
    """One GE validation of one extract for one quarter, stored (counts only) and rendered in
    Data Docs; a re-run replaces the quarter's earlier result for the extract. `gx_context`: the
    run's `RunContext` (a context opened once per run: opening one takes ≈ 0.15 s); without it
    one is opened here.

    `source` is the gate's checked extract (`gate.Checked.source`: `checks.evaluate` of the
    read rows, a LazyFrame, or a DataFrame of the same columns). It is validated in batches of
    at most `batch_rows` rows from one streaming pass, and the batches' results are merged into
    one result whose counts are the whole extract's. `ctx` should carry the cross-row sets
    (`checks.cross_row_context`); if it does not and the extract may not fit in one batch, they
    are settled here first, at the cost of one more pass over the source.

    Returns {"name", "suite", "success", "error", "expectations": [{"reason", "expectation",
    "success", "unexpected_count", "element_count", "missing_count", "exception"}],
    "statistics"} (statistics: GE's, over the merged expectations, plus "rows", "batches",
    "batch_rows", "seconds"). With `result_format` (tests use COMPLETE) each expectation also
    carries its `unexpected_index_list` (row positions in the whole extract); the stored result
    is scrubbed of it all the same.

    `update_data_docs=False` stores the result without rendering it (a caller validating many
    extracts can call `build_data_docs` once at the end).

    A GE problem never raises: it is logged and returned in `error` (success False), unless
    `raise_errors` (tests), which also raises when an expectation raised inside GE.
    """
    dept = department or contract.department
    contract = as_sent_by(contract, dept)  # as the gate read it (a department's date habit)
    name = f"{Quarter.parse(str(quarter))}.{dept}.{contract.extract}"
    summary: dict[str, Any] = {
        "name": name,
        "suite": suite_name(contract, dept),
        "success": False,
        "error": None,
        "expectations": [],
        "statistics": {},
    }
    if source is None:
        summary["error"] = "nothing to validate: the file is missing or could not be read"
        return summary
    try:
        with _one_writer(Path(out)):
            _validate(
                summary,
                Path(out),
                contract,
                source,
                ctx,
                checks,
                batch_rows,
                result_format,
                dept,
                update_data_docs,
                gx_context,
            )
    except Exception as e:
        if raise_errors:
            raise
        summary["success"] = False
        summary["error"] = f"{type(e).__name__}: {idnumbers.scrub(str(e))}"
        logger.error(
            "Great Expectations validation %s failed: %s\n%s",
            name,
            summary["error"],
            "".join(traceback.format_tb(e.__traceback__)),
        )
    raised = [x for x in summary["expectations"] if x["exception"]]
    for x in raised:
        logger.error("%s: expectation for %s raised: %s", name, x["reason"], x["exception"])
    if raised:
        reasons = ", ".join(x["reason"] for x in raised)
        summary["error"] = summary["error"] or f"expectations raised inside GE: {reasons}"
        if raise_errors:
            raise RuntimeError(f"{name}: {summary['error']}")
    return summary


def _validate(
    summary: dict,
    out: Path,
    contract: Contract,
    source: pl.LazyFrame | pl.DataFrame | row_checks.Prepared,
    ctx: CheckContext,
    checks: list[Check],
    batch_rows: int,
    result_format: dict | str | None,
    dept: str,
    update_data_docs: bool,
    gx_context,
) -> None:
    started = time.perf_counter()
    given: tuple[str, ...] = ()
    if isinstance(source, row_checks.Prepared):
        given, prepared = source.flags, source.frame
        present = [n for n in prepared.collect_schema().names() if n not in set(given)]
        if not settled(ctx, contract, present):
            raise ValueError(
                f"{summary['name']}: rows prepared by the gate come with the context that "
                "settled their row-comparing checks"
            )
    else:
        present = source.collect_schema().names()
    if not settled(ctx, contract, present) and (
        isinstance(source, pl.LazyFrame) or source.height > batch_rows
    ):
        # GE's own uniqueness would see one batch: settle the row-comparing checks first
        ctx, _ = row_checks.cross_row_context(source.lazy(), contract, ctx)
    ge_names = [c.name for c in contract.columns if c.name in present]
    run_context, gx_context = gx_context, _context_of(out, gx_context)
    suite = build_suite(contract, ctx, checks, present=ge_names, department=dept)
    suite = _stored_suite(gx_context, suite)
    batch = _batch_definition(gx_context, suite.name)
    definition = _validation_definition(gx_context, summary["name"], batch, suite)
    want_indexes = result_format is not None
    current = _Validation(contract, ctx, {c.reason: c for c in checks})
    custom = [c for c in checks if c.reason in _custom_reasons(suite)]
    merged: _Merged | None = None
    rows = n_batches = 0
    parts = batches(source, contract, batch_rows)
    part = next(parts, None)
    if part is None:  # no rows: validate the empty frame once, so the quarter has its result
        if isinstance(source, row_checks.Prepared):
            part = source.frame.lazy().head(0).collect()
        else:
            columns = row_checks.ge_columns(contract, set(present))
            part = source.lazy().select(columns).head(0).collect()
    token = _CURRENT.set(current)
    try:
        # GE fingerprints every pandas batch under 1 GB with an MD5 over all its values: a digest
        # of personal data we would not keep anyway (it is dropped below), and ~1 s per million
        # rows. GE has no option for it; it is switched off for this call only.
        with (
            mock.patch.object(pandas_execution_engine, "HASH_THRESHOLD", 0),
            _configurations_kept(),
            _plain_metric_ids(),
        ):
            while part is not None:
                height = part.height
                frame = part.select(ge_names).to_pandas()  # via Arrow; RangeIndex
                current.evaluate_batch(part, custom, given)
                part = None  # only GE's pandas copy of the batch stays in memory meanwhile
                # ValidationDefinition.run would store the result as GE made it; the Validator it
                # runs is used directly so that only a scrubbed result (counts, no values) is ever
                # written.
                validator = Validator(
                    batch_definition=batch,
                    result_format=result_format or DEFAULT_RESULT_FORMAT,
                    batch_parameters={"dataframe": frame},
                )
                results = validator.validate_expectation_suite(suite)
                crash_point("expectations")
                if merged is None:
                    merged = _Merged(results, validator.active_batch_id)
                merged.add(results, offset=rows, indexes=want_indexes)
                rows += height
                n_batches += 1
                del validator, results, frame
                part = next(parts, None)
    finally:
        _CURRENT.reset(token)  # the flags and sets belong to this validation only
    if merged is None:  # pragma: no cover - the loop runs at least once
        raise RuntimeError(f"{summary['name']}: no batch was validated")
    results = merged.result()
    run_id = RunIdentifier(run_name=summary["name"], run_time=dt.datetime.now(dt.UTC))
    results.meta.update(
        validation_id=definition.id,
        checkpoint_id=None,
        run_id=run_id,
        validation_time=run_id.run_time,
        batch_parameters={"dataframe": "<DATAFRAME>"},
        batches=n_batches,
        batch_rows=batch_rows,
    )
    results.meta.get("batch_markers", {}).pop("pandas_data_fingerprint", None)

    for r, indexes in zip(results.results, merged.indexes, strict=True):
        meta = r.expectation_config.meta or {}
        res = r.result or {}
        entry = {
            "reason": meta.get("reason"),
            "expectation": r.expectation_config.type,
            "success": bool(r.success),
            "unexpected_count": res.get("unexpected_count"),
            "element_count": res.get("element_count"),
            "missing_count": res.get("missing_count"),
            "exception": _exception_summary(r.exception_info),
        }
        if want_indexes and indexes is not None:
            entry["unexpected_index_list"] = indexes
        summary["expectations"].append(entry)
        _scrub(r)
    summary["success"] = bool(results.success)
    summary["statistics"] = {
        **dict(results.statistics),
        "rows": rows,
        "batches": n_batches,
        "batch_rows": batch_rows,
        "seconds": round(time.perf_counter() - started, 3),
    }

    store = gx_context.validation_results_store
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    # one validation per extract per quarter: an earlier one of this quarter is replaced. Only
    # the folder of this suite's results for this quarter is listed (`<suite as folders>/<run
    # name>/`, as the page folders are), not every result of every quarter.
    here = (*suite.name.split("."), summary["name"])
    for found in store.store_backend.list_keys(prefix=here):
        old = store.tuple_to_key(found)
        if old.expectation_suite_identifier.name == suite.name and (
            old.run_id.run_name == summary["name"]
        ):
            store.remove_key(old)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=suite_id,
        run_id=run_id,
        batch_identifier=merged.batch_id,
    )
    store.set(key, results)
    if update_data_docs:  # what a Checkpoint's UpdateDataDocsAction does, for this result only
        with _index_links_kept(gx_context, out):
            gx_context.build_data_docs(site_names=[SITE], resource_identifiers=[suite_id, key])
        datadocs.install_static(Outputs(out).data_docs_vendor)
    if run_context is not None:
        run_context.written()


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


class _Merged:
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
            if self.exceptions[i] is None and _exception_summary(r.exception_info):
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


def _exception_summary(info: Any) -> str | None:
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
    r.result = {k: res[k] for k in _STORED_RESULT_KEYS if k in res}
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


# What GE's index builder reads of a stored validation (`_add_validations_to_index_links`): its
# success, and in its meta the batch's kwargs and spec and the asset's name.
_INDEX_META = ("batch_kwargs", "batch_spec", "active_batch_definition")


@contextlib.contextmanager
def _index_links_kept(gx_context, out: Path) -> Iterator[None]:
    """GE builds the Data Docs index by reading every stored validation of every quarter again
    (`get_validation_result` for each), only for its success and three entries of its meta: the
    one part of a quarter's Data Docs that grew with the history. For this build those are read
    from `<gx>/uncommitted/index_links.json` where a result is there, and a result that is not
    is read as GE reads it and added. A result is never changed once stored (a re-run stores a
    new one under a new run time), so what is kept stays true; a file that cannot be read is
    built again from the results."""
    path = Outputs(out).gx_index_links
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


def _page_folder(pages: Path, key) -> Path:
    """Where GE's site puts a validation result's page: `<suite as folders>/<run name>/`."""
    suite = key.expectation_suite_identifier.name
    return pages.joinpath(*suite.split("."), key.run_id.run_name)


def build_data_docs(
    out: Path,
    quarter: Quarter | str | None = None,
    *,
    raise_errors: bool = False,
    gx_context=None,
) -> Path | None:
    """Build the Data Docs site; returns `<out>/data_docs/index.html` (None, logged, if GE could
    not build it, unless `raise_errors`). With `quarter`, only that quarter's validation pages
    and their suites' pages are rendered, and the index (which lists every quarter) rebuilt: the
    earlier quarters' pages are there already, unchanged, so the work does not grow with the
    history; a stored result of another quarter whose page is missing is rendered too. Without
    it, or when the site has no index yet, the whole site is rendered."""
    out = Path(out).resolve()
    try:
        with _one_writer(out):
            ctx = _context_of(out, gx_context)
            if quarter is None or not Outputs(out).data_docs_index.is_file():
                parts = {}
            else:
                prefix = f"{Quarter.parse(str(quarter))}."
                pages = Outputs(out).data_docs_validations
                keys = [
                    k
                    for k in ctx.validation_results_store.list_keys()
                    if k.run_id.run_name
                    and (
                        k.run_id.run_name.startswith(prefix)
                        # a result whose page is missing (its quarter's build failed): so the
                        # index, which lists every result, links nothing that is not there
                        or not _page_folder(pages, k).is_dir()
                    )
                ]
                suites = {
                    k.expectation_suite_identifier.name: k.expectation_suite_identifier
                    for k in keys
                }
                parts = {"resource_identifiers": [*suites.values(), *keys]}
            with _index_links_kept(ctx, out):
                ctx.build_data_docs(site_names=[SITE], **parts)
            datadocs.install_static(Outputs(out).data_docs_vendor)
    except Exception as e:
        if raise_errors:
            raise
        logger.error(
            "Great Expectations Data Docs for %s not built: %s: %s\n%s",
            out,
            type(e).__name__,
            idnumbers.scrub(str(e)),
            "".join(traceback.format_tb(e.__traceback__)),
        )
        return None
    return Outputs(out).data_docs_index


__all__ = [
    "DEFAULT_RESULT_FORMAT",
    "RunContext",
    "ExpectColumnValuesToPassContractRule",
    "ExpectMulticolumnValuesToPassContractRule",
    "batches",
    "build_data_docs",
    "build_suite",
    "context",
    "expectation_for",
    "ge_frame",
    "settled",
    "suite_name",
    "validate",
]
