"""Pseudonyms: keyed HMAC-SHA-256 of identifiers (domain.md, privacy).

The key is the province's secret, given to a run from its secret store (the command line and the
Dagster resource `pseudonym` read it from `SAFETYNET_PSEUDONYM_KEY`), never from the repository:
with it, anyone could recompute a `person_key` from an identity number, so it is held like a
password. `make demo` and the tests use `DEMO_KEY`, which says what it is in its text; a run with
it is marked as a demo everywhere it reports.

`warning_key` is keyed the same way: a bare hash of (rule, identity number) could be reversed by
hashing every plausible identity number, and the key is quoted in files and feedback.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import duckdb
import polars as pl

DEMO_KEY = "DEMO-KEY-NOT-FOR-PRODUCTION:safetynet-synthetic-data-only"
# HMAC-SHA-256's own strength: a shorter secret is easier to guess than the hash is to break, and
# whoever guesses it recomputes every person_key and warning_key from a list of identity numbers
MIN_KEY_BYTES = 32
NEW_KEY_COMMAND = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class KeyMissing(RuntimeError):
    """The pseudonym key is not set, or not one to run with: the job must not run."""


class KeyTooShort(KeyMissing):
    """The key is shorter than `MIN_KEY_BYTES` and not the marked demo key."""


def is_demo(key: bytes) -> bool:
    return key.startswith(DEMO_KEY.split(":")[0].encode())


def checked(key: bytes, name: str) -> bytes:
    """The key, if it may key a run: the marked demo key, or at least `MIN_KEY_BYTES` bytes.
    `name` is where it came from, for the message (which never shows the key)."""
    if not is_demo(key) and len(key) < MIN_KEY_BYTES:
        raise KeyTooShort(
            f"{name} is {len(key)} bytes; a pseudonym key needs at least {MIN_KEY_BYTES} "
            "(256 bits): a shorter one can be guessed, and with it every person_key and "
            f"warning_key recomputed from identity numbers. Generate one with {NEW_KEY_COMMAND} "
            "and keep it in the province's secret store (docs/policy.md, Keys)"
        )
    return key


def digest(key: bytes, text: str) -> str:
    """HMAC-SHA-256 of `text` under `key`, in hex: `hmac.new(key, text, sha256).hexdigest()`,
    from the key's two padded hash states computed once (RFC 2104), which takes half the time
    of keying an `hmac` object for each of the millions of keys a province quarter needs
    (tests/test_pseudonym.py checks the two agree)."""
    inner_state, outer_state = _pads(key)
    inner = inner_state.copy()
    inner.update(text.encode("utf-8"))
    outer = outer_state.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


@functools.lru_cache(maxsize=4)
def _pads(key: bytes) -> tuple[Any, Any]:
    inner, outer = _pad_blocks(key)
    return hashlib.sha256(inner), hashlib.sha256(outer)


def _pad_blocks(key: bytes) -> tuple[bytes, bytes]:
    """The key's inner and outer padded blocks (RFC 2104)."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def person_key(key: bytes, id_number: str | None) -> str | None:
    """The analyst's stand-in for an identity number: the same person, the same key, every
    quarter; 32 hex characters (128 bits)."""
    if id_number is None:
        return None
    return digest(key, "person|" + id_number)[:32]


def warning_key(
    key: bytes, rule_id: str, subject_type: str, source: str | None, subject: str
) -> str:
    """A stable id of (rule, subject): `<rule_id>-<16 hex>`, the same every quarter."""
    scope = subject if subject_type == "PERSON" else f"{source}:{subject}"
    return f"{rule_id}-{digest(key, f'warning|{rule_id}|{scope}')[:16]}"


# The same keys for a whole column at once, computed by DuckDB (its `sha256` over the key's
# padded blocks, RFC 2104: HMAC = H(outer pad ‖ H(inner pad ‖ message))), on every core: a
# province quarter's 1.7 million warning keys in well under a second instead of seconds of
# Python. tests/test_pseudonym.py checks them against `person_key` and `warning_key`.
_HMAC = "sha256($outer || unhex(sha256($inner || encode({message}))))"


def _keyed_column(key: bytes, frame: pl.DataFrame, message: str, result: str) -> pl.Series:
    """`result` (SQL over `message`'s hex HMAC, `h`) for each row of `frame`, in order."""
    inner, outer = _pad_blocks(key)
    # in the rows' order: a projection keeps it while `preserve_insertion_order` is on (the
    # default)
    with duckdb.connect(config={"preserve_insertion_order": True}) as con:
        con.register("keyed", frame.to_arrow())
        keys = con.sql(
            f"select {result} as k from (select *, {_HMAC.format(message=message)} as h "
            "from keyed)",
            params={"inner": inner, "outer": outer},
        ).to_arrow_table()
    return pl.Series(keys.column("k"), dtype=pl.String)


def person_keys(key: bytes, id_numbers: pl.Series) -> pl.Series:
    """`person_key` of each identity number (null for null)."""
    frame = pl.DataFrame({"id_number": id_numbers.cast(pl.String)})
    return _keyed_column(key, frame, "'person|' || id_number", "left(h, 32)").alias("person_key")


def warning_keys(key: bytes, frame: pl.DataFrame) -> pl.Series:
    """`warning_key` of each row of `frame` (`rule_id`, `subject_type`, `household_source`,
    `subject_id`); a missing source or subject reads `None`, as in `warning_key`."""
    rows = frame.select("rule_id", "subject_type", "household_source", "subject_id")
    scope = (
        "case when subject_type = 'PERSON' then coalesce(subject_id, 'None') else "
        "coalesce(household_source, 'None') || ':' || coalesce(subject_id, 'None') end"
    )
    return _keyed_column(
        key, rows, f"'warning|' || rule_id || '|' || {scope}", "rule_id || '-' || left(h, 16)"
    ).alias("warning_key")
