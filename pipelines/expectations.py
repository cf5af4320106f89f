"""Great Expectations over the data contract: the one module that imports great_expectations.

The suite is compiled from the same `checks.Check` objects the gate evaluates, one expectation
per check, so GE's unexpected rows and the gate's quarantined rows agree row for row
(tests/test_expectations.py shows it on a file with planted errors).

- Native expectations where they are exact equivalents of the Polars check: `required` (not
  null), `codes` and `county` (in set; nulls pass, as in the gate), `type_money`/`type_int`/
  `type_decimal` (the same regex constants), and `duplicate_key` when every key column is one GE
  sees exactly as the gate compares it (id, code, county, text).
- Every other check is one of two custom expectations whose metric runs the gate's own Polars
  code (`checks.evaluate`) on the columns GE hands it: a column map for a check reading one
  column, a multicolumn map (`ignore_row_if="never"`, the Polars code decides about nulls) for a
  check reading several.

One validation per extract per quarter, named `<quarter>.<dept>.<extract>`, in a file context at
`<out>/gx`, with Data Docs at `<out>/data_docs/index.html` (outputs.md §4). Stored results keep
counts only: no value from the data (identity numbers and names are personal data) is stored or
rendered.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import logging
import os
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no usage statistics, no network

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.data_context.types.resource_identifiers import (  # noqa: E402
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.execution_engine import (  # noqa: E402
    PandasExecutionEngine,
    pandas_execution_engine,
)
from great_expectations.expectations.expectation import (  # noqa: E402
    ColumnMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (  # noqa: E402
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
    multicolumn_condition_partial,
)
from great_expectations.validator.v1_validator import Validator  # noqa: E402

# `row_checks`: the module; `checks` is what the gate compiled (a list of `Check`), as in gate.py.
from pipelines import checks as row_checks  # noqa: E402
from pipelines import contracts, gbt2260, idnumbers  # noqa: E402
from pipelines.checks import Check, CheckContext  # noqa: E402
from pipelines.contracts import Contract  # noqa: E402
from pipelines.quarters import Quarter  # noqa: E402

logger = logging.getLogger(__name__)

# GE fingerprints every pandas batch under 1 GB with an MD5 over all its values: a digest of
# personal data we would not keep anyway, and ~1 s per million rows. Frames of any size skip it.
pandas_execution_engine.HASH_THRESHOLD = 0

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
# GE sees the gate's typed value for these (normalised identity number, upper-cased code) ...
_TYPED_IN_GE = ("id", "code", "county")
# ... and for these the value GE sees is the one the gate compares keys on (`text`'s typed value
# is the trimmed text itself); a key with a date or month column is compared on the parsed date,
# so its uniqueness is left to the Polars code.
_KEY_AS_IN_GE = (*_TYPED_IN_GE, "text")
_REGEX = {
    "type_money": row_checks.MONEY_PATTERN,
    "type_int": row_checks.INT_PATTERN,
    "type_decimal": row_checks.DECIMAL_PATTERN,
}


# --- the frame GE validates -------------------------------------------------------------------


def ge_frame(checked: pl.DataFrame, contract: Contract) -> pd.DataFrame:
    """The frame GE validates, from the gate's checked frame (`run_extract(keep_frame=True)`).

    One column per contract column present in the file, under its canonical name: the typed
    value for id/code/county columns, the trimmed text (empty as null) for every other type.
    Row order is kept and the index is a RangeIndex, so GE's `unexpected_index_list` are row
    positions in the file.
    """
    cols = [
        (pl.col(f"{c.name}__v") if c.value_type in _TYPED_IN_GE else row_checks.text(c.name))
        .cast(pl.String)
        .alias(c.name)
        for c in contract.columns
        if c.name in checked.columns
    ]
    return checked.select(cols).to_pandas()  # through Arrow; RangeIndex


# --- custom expectations: the gate's Polars code as GE metrics -------------------------------

_CONTRACTS: dict[str, Contract] = {}  # contract name -> contract, for contracts built elsewhere
_ROUTED_KEYS: dict[str, frozenset[str]] = {}  # token -> warning keys routed to a department


def _routed_keys_token(keys: frozenset[str] | None) -> str | None:
    """A short, stable token for a set of routed warning keys (the set itself can be large and
    does not belong in a suite): the same keys give the same token, so a re-run leaves the
    suite unchanged."""
    if keys is None:
        return None
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
    token = f"keys-{len(keys)}-{digest}"
    _ROUTED_KEYS[token] = keys
    return token


def _contract_named(name: str) -> Contract:
    if name in _CONTRACTS:
        return _CONTRACTS[name]
    department, extract = name.split(".", 1)
    return contracts.all_contracts()[(department, extract)]


@functools.lru_cache(maxsize=256)
def _resolve(contract_name: str, quarter: str, routed_keys: str | None, reason: str):
    contract = _contract_named(contract_name)
    keys = None if routed_keys is None else _ROUTED_KEYS[routed_keys]
    ctx = CheckContext(Quarter.parse(quarter), keys)
    for check in row_checks.compile_checks(contract, ctx):
        if check.reason == reason:
            return contract, ctx, check
    raise KeyError(f"{contract_name}: no check with reason {reason!r}")


def _passes(
    frame: pd.DataFrame, reason: str, contract: str, quarter: str, routed_keys: str | None
) -> pd.Series:
    """True where the row passes the check: the gate's own failure expression, negated."""
    c, ctx, check = _resolve(contract, quarter, routed_keys, reason)
    lf = pl.from_pandas(frame).lazy().with_columns(pl.all().cast(pl.String))
    failed = row_checks.evaluate(lf, c, ctx, [check]).select(check.reason).collect().to_series()
    return pd.Series(~failed.to_numpy(), index=frame.index, dtype=bool)


_RULE_KEYS = ("reason", "contract", "quarter", "routed_keys")


class ColumnValuesPassContractRule(ColumnMapMetricProvider):
    condition_metric_name = "column_values.safetynet_contract_rule"
    condition_value_keys = _RULE_KEYS

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, reason, contract, quarter, routed_keys=None, **kwargs):
        return _passes(column.to_frame(), reason, contract, quarter, routed_keys)


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
    def _pandas(cls, column_list, reason, contract, quarter, routed_keys=None, **kwargs):
        return _passes(column_list, reason, contract, quarter, routed_keys)


class ExpectColumnValuesToPassContractRule(ColumnMapExpectation):
    """Values of one column pass a row check of the data contract (`checks.py`), evaluated by
    the same Polars code the gate quarantines with. Nulls are not checked (no single-column
    rule fails a null; `required` is its own expectation)."""

    reason: str  # the contract rule, which is also the gate's quarantine reason
    contract: str  # `<dept>.<extract>`
    quarter: str  # e.g. `2026Q3`: the checks depending on the quarter end
    routed_keys: str | None = None  # token of the routed warning keys (feedback)

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

    map_metric: ClassVar[str] = "multicolumn_values.safetynet_contract_rule"
    success_keys = (*_RULE_KEYS, "mostly")


# --- the suite --------------------------------------------------------------------------------


def suite_name(contract: Contract, department: str | None = None) -> str:
    return f"{department or contract.department}.{contract.extract}"


def expectation_for(check: Check, contract: Contract, ctx: CheckContext) -> gxe.Expectation:
    """The one expectation a check compiles to."""
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
    col = columns[0]
    a = check.arguments
    k = check.kind
    if k == "required":
        return gxe.ExpectColumnValuesToNotBeNull(column=col, **common)
    if k == "codes":
        return gxe.ExpectColumnValuesToBeInSet(
            column=col, value_set=list(a["validValues"]), **common
        )
    if k == "county":
        codes = sorted(gbt2260.county_codes_in_force(a["year"]))
        return gxe.ExpectColumnValuesToBeInSet(column=col, value_set=codes, **common)
    if k in _REGEX:
        return gxe.ExpectColumnValuesToMatchRegex(column=col, regex=_REGEX[k], **common)
    if k == "duplicate_key" and all(
        contract.column(c).value_type in _KEY_AS_IN_GE for c in columns
    ):
        # pandas `duplicated(keep=False)`: every copy of a duplicated key is unexpected.
        if len(columns) == 1:
            return gxe.ExpectColumnValuesToBeUnique(column=col, **common)
        return gxe.ExpectCompoundColumnsToBeUnique(
            column_list=columns, ignore_row_if="any_value_is_missing", **common
        )
    rule = {
        "reason": check.reason,
        "contract": contract.name,
        "quarter": str(ctx.quarter),
        "routed_keys": _routed_keys_token(ctx.routed_warning_keys),
    }
    if len(columns) == 1:
        return ExpectColumnValuesToPassContractRule(column=col, **rule, **common)
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
    (default: every contract column), as the gate leaves out checks on missing columns."""
    if _CONTRACTS.get(contract.name) != contract:
        _CONTRACTS[contract.name] = contract
        _resolve.cache_clear()
    have = {c.name for c in contract.columns} if present is None else set(present)
    wanted = [expectation_for(c, contract, ctx) for c in checks if set(c.columns) <= have]
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


# --- the file context, validation and Data Docs -----------------------------------------------


def _site_config(out: Path) -> dict:
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(out / "data_docs"),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }


def context(out: Path):
    """The file context at `<out>/gx`, its Data Docs site at `<out>/data_docs` (absolute),
    quiet: no usage statistics, no progress bars. The configuration is written only when it
    changes, so concurrent runs do not rewrite it."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", project_root_dir=str(out))
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
    if changed:
        ctx.variables.save()
        ctx = gx.get_context(mode="file", project_root_dir=str(out))
    return ctx


@contextlib.contextmanager
def _one_writer(out: Path):
    """One GE writer per output folder at a time, across processes: GE rewrites
    `great_expectations.yml` (not atomically) when it adds an asset, and Data Docs rebuild one
    index; parallel Dagster steps would lose each other's updates. It also keeps one GE
    validation's memory at a time."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".gx.lock").open("w") as lock:
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


def validate(
    out: Path,
    contract: Contract,
    quarter: Quarter | str,
    checked_frame: pl.DataFrame | None,
    ctx: CheckContext,
    checks: list[Check],
    *,
    result_format: dict | str | None = None,
    department: str | None = None,
    update_data_docs: bool = True,
    raise_errors: bool = False,
) -> dict:
    """One GE validation of one extract for one quarter, stored (counts only) and rendered in
    Data Docs; a re-run replaces the quarter's earlier result for the extract.

    Returns {"name", "suite", "success", "error", "expectations": [{"reason", "expectation",
    "success", "unexpected_count", "exception"}], "statistics"}. With `result_format` (tests
    use COMPLETE) each expectation also carries its `unexpected_index_list` (row positions);
    the stored result is scrubbed of it all the same.

    `update_data_docs=False` stores the result without rendering it (a caller validating many
    extracts can call `build_data_docs` once at the end).

    A GE problem never raises: it is logged and returned in `error` (success False), unless
    `raise_errors` (tests), which also raises when an expectation raised inside GE.
    """
    dept = department or contract.department
    name = f"{Quarter.parse(str(quarter))}.{dept}.{contract.extract}"
    summary: dict[str, Any] = {
        "name": name,
        "suite": suite_name(contract, dept),
        "success": False,
        "error": None,
        "expectations": [],
        "statistics": {},
    }
    if checked_frame is None:
        summary["error"] = "nothing to validate: the file is missing or could not be read"
        return summary
    try:
        with _one_writer(Path(out)):
            _validate(
                summary,
                Path(out),
                contract,
                checked_frame,
                ctx,
                checks,
                result_format,
                dept,
                update_data_docs,
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
    checked_frame: pl.DataFrame,
    ctx: CheckContext,
    checks: list[Check],
    result_format: dict | str | None,
    dept: str,
    update_data_docs: bool,
) -> None:
    started = time.perf_counter()
    gx_context = context(out)
    frame = ge_frame(checked_frame, contract)
    suite = build_suite(contract, ctx, checks, present=frame.columns, department=dept)
    suite = gx_context.suites.add_or_update(suite)
    batch = _batch_definition(gx_context, suite.name)
    definition = gx_context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=summary["name"], data=batch, suite=suite)
    )
    # ValidationDefinition.run would store the result as GE made it; the Validator it runs is
    # used directly so that only a scrubbed result (counts, no values) is ever written.
    validator = Validator(
        batch_definition=batch,
        result_format=result_format or DEFAULT_RESULT_FORMAT,
        batch_parameters={"dataframe": frame},
    )
    results = validator.validate_expectation_suite(suite)
    run_id = RunIdentifier(run_name=summary["name"], run_time=dt.datetime.now(dt.UTC))
    results.meta.update(
        validation_id=definition.id,
        checkpoint_id=None,
        run_id=run_id,
        validation_time=run_id.run_time,
        batch_parameters={"dataframe": "<DATAFRAME>"},
    )
    results.meta.get("batch_markers", {}).pop("pandas_data_fingerprint", None)

    want_indexes = result_format is not None
    for r in results.results:
        meta = r.expectation_config.meta or {}
        res = r.result or {}
        entry = {
            "reason": meta.get("reason"),
            "expectation": r.expectation_config.type,
            "success": bool(r.success),
            "unexpected_count": res.get("unexpected_count"),
            "exception": _exception_summary(r.exception_info),
        }
        if want_indexes and "unexpected_index_list" in res:
            entry["unexpected_index_list"] = [int(i) for i in res["unexpected_index_list"]]
        summary["expectations"].append(entry)
        _scrub(r)
    summary["success"] = bool(results.success)
    summary["statistics"] = {
        **dict(results.statistics),
        "rows": len(frame),
        "seconds": round(time.perf_counter() - started, 3),
    }

    store = gx_context.validation_results_store
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    for old in store.list_keys():  # one validation per extract per quarter
        if old.expectation_suite_identifier.name == suite.name and (
            old.run_id.run_name == summary["name"]
        ):
            store.remove_key(old)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=suite_id,
        run_id=run_id,
        batch_identifier=validator.active_batch_id,
    )
    store.set(key, results)
    if update_data_docs:  # what a Checkpoint's UpdateDataDocsAction does, for this result only
        gx_context.build_data_docs(site_names=[SITE], resource_identifiers=[suite_id, key])


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


def build_data_docs(out: Path, *, raise_errors: bool = False) -> Path | None:
    """Rebuild the whole Data Docs site; returns `<out>/data_docs/index.html` (None, logged, if
    GE could not build it, unless `raise_errors`)."""
    out = Path(out).resolve()
    try:
        with _one_writer(out):
            context(out).build_data_docs(site_names=[SITE])
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
    return out / "data_docs" / "index.html"


__all__ = [
    "DEFAULT_RESULT_FORMAT",
    "ExpectColumnValuesToPassContractRule",
    "ExpectMulticolumnValuesToPassContractRule",
    "build_data_docs",
    "build_suite",
    "context",
    "expectation_for",
    "ge_frame",
    "suite_name",
    "validate",
]
