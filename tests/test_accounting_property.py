"""Accounting (extracts.md §2): for any mix of good and bad rows, in any format, rows received =
rows accepted + rows quarantined, and every row number of the file lands exactly once in
staging or quarantine."""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.core.contracts import all_contracts
from pipelines.gate import extract as gate
from pipelines.gate.checks import CheckContext, compile_checks
from pipelines.generate.samples import (
    QUARTER,
    CannotPlant,
    make_rows,
    plant,
    warning_keys,
    write_extract,
)
from tests.gating import run_gate

CONTRACTS = sorted(all_contracts().values(), key=lambda c: c.name)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_row_is_accounted_for_exactly_once(data):
    contract = data.draw(st.sampled_from(CONTRACTS), label="contract")
    n = data.draw(st.integers(min_value=1, max_value=80), label="rows")
    fmt = data.draw(st.sampled_from(["csv", "parquet", "xlsx"]), label="format")
    seed = data.draw(st.integers(min_value=0, max_value=10_000), label="seed")
    feedback = contract.extract == "feedback"
    keys = warning_keys(n, seed)
    ctx = CheckContext(QUARTER, frozenset(keys) if feedback else None)
    checks = compile_checks(contract, ctx)
    rows = make_rows(contract, n, seed=seed, keys=keys)

    errors = data.draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.sampled_from(checks)),
            max_size=max(1, n // 4),
        ),
        label="errors",
    )
    for i, check in errors:
        with contextlib.suppress(CannotPlant):  # an earlier error took what this one needs
            plant(rows, contract, check, i)
    copies = data.draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3),
        label="duplicated rows (from, onto)",
    )
    for src, dst in copies:
        rows[dst] = dict(rows[src])

    with tempfile.TemporaryDirectory() as tmp:
        landing, out = Path(tmp) / "landing", Path(tmp) / "out"
        options = {"department": "mca", "routed_warning_keys": ctx.routed_warning_keys}
        write_extract(landing, contract, rows, fmt=fmt, dept="mca" if feedback else "")
        run = run_gate(contract, landing, out, **(options if feedback else {}))

    r = run.result
    assert r.rows_received == n
    assert r.rows_received == r.rows_accepted + r.rows_quarantined
    staged = [] if run.staging is None else run.staging["row_number"].to_list()
    quarantined = [] if run.quarantine is None else run.quarantine["row_number"].to_list()
    assert Counter(staged + quarantined) == Counter(range(1, n + 1))
    assert len(staged) == r.rows_accepted and len(quarantined) == r.rows_quarantined
    if r.status == gate.FAILED:
        assert r.rows_accepted == 0
    else:
        # more than 5 % quarantined fails a file, but not feedback (spec README, Settled)
        assert r.status == gate.PASSED
        assert r.rows_quarantined <= 0.05 * n or not contract.weighs_quarantine_share
    if run.quarantine is not None:
        assert all(len(reasons) > 0 for reasons in run.quarantine["reasons"])
