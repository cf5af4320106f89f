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

import hashlib
import hmac

DEMO_KEY = "DEMO-KEY-NOT-FOR-PRODUCTION:safetynet-synthetic-data-only"


class KeyMissing(RuntimeError):
    """The pseudonym key is not set: the job must not run."""


def is_demo(key: bytes) -> bool:
    return key.startswith(DEMO_KEY.split(":")[0].encode())


def digest(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


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
