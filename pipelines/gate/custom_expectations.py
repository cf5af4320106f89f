"""The two custom Great Expectations expectations of the data contract: a row check
(`gate/kinds.py`) that has no exact equivalent among GE's expectations, run by the gate's own
Polars code (`checks.evaluate`) as a GE metric on the columns GE hands it — a column map for a
check reading one column, a multicolumn map (`ignore_row_if="never"`, the Polars code decides
about nulls) for a check reading several.

The metrics need the Python objects of the validation running (its contract, the context with
the routed keys and the settled sets, the flags of the batch): GE hands a metric only the
serialisable arguments of its expectation, so `expectations.validate` makes them the current
validation (`running`: the context variable `_CURRENT`, set for the call and reset after it)
and the expectation carries names of them only — a name, never anything derived from the keys
(identity numbers).

GE finds an expectation's class by its name, in a registry the class fills when it is defined:
this module is imported wherever GE meets these expectations, validating (`expectations`) and
rendering the stored suites and results (`datadocs`).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
from collections.abc import Iterable, Iterator
from typing import ClassVar

import numpy as np
import pandas as pd
import polars as pl
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
    multicolumn_condition_partial,
)

from pipelines.core import idnumbers
from pipelines.core.contracts import Contract

# `row_checks`: the module; `checks` is what the gate compiled (a list of `Check`), as elsewhere.
from pipelines.gate import checks as row_checks
from pipelines.gate.kinds import Check, CheckContext

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Validation:
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


_CURRENT: contextvars.ContextVar[Validation | None] = contextvars.ContextVar(
    "safetynet_validation", default=None
)


@contextlib.contextmanager
def running(validation: Validation) -> Iterator[Validation]:
    """`validation` is the one running, for the custom metrics, until the block ends: its
    flags and sets belong to it only."""
    token = _CURRENT.set(validation)
    try:
        yield validation
    finally:
        _CURRENT.reset(token)


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


CUSTOM = (ExpectColumnValuesToPassContractRule, ExpectMulticolumnValuesToPassContractRule)

__all__ = [
    "CUSTOM",
    "ExpectColumnValuesToPassContractRule",
    "ExpectMulticolumnValuesToPassContractRule",
    "Validation",
    "running",
]
