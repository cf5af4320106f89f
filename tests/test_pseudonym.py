"""Pseudonyms are HMAC-SHA-256 (`pipelines/core/pseudonym.py`)."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest

from pipelines.core import pseudonym


@pytest.mark.parametrize("length", [1, 32, 63, 64, 65, 200])
def test_a_digest_is_the_standard_hmac_sha256_for_a_key_of_any_length(length):
    rng = random.Random(length)
    key = bytes(rng.randrange(256) for _ in range(length))
    for text in ["", "person|350102199001011234", "warning|NE_DIBAO|ROSTER:C1", "低保" * 50]:
        expected = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        assert pseudonym.digest(key, text) == expected


def test_a_person_key_and_a_warning_key_keep_their_shape_and_differ_by_key():
    a, b = b"a" * 32, b"b" * 32
    assert len(pseudonym.person_key(a, "350102199001011234")) == 32
    assert pseudonym.warning_key(a, "NE_DIBAO", "HOUSEHOLD", "ROSTER", "C1").startswith("NE_DIBAO-")
    assert pseudonym.person_key(a, "350102199001011234") != pseudonym.person_key(
        b, "350102199001011234"
    )


def test_a_whole_column_of_keys_is_each_row_keyed_alone_in_the_same_order():
    import polars as pl

    key = b"k" * 40
    rng = random.Random(7)
    ids = [f"3501{rng.randrange(10**14):014d}" for _ in range(2000)] + [None, "低保"]
    assert pseudonym.person_keys(key, pl.Series(ids)).to_list() == [
        pseudonym.person_key(key, v) for v in ids
    ]
    frame = pl.DataFrame(
        {
            "rule_id": ["NE_DIBAO", "PNI_MEDICAL_ENROLMENT", "NE_TEKUN"] * 700,
            "subject_type": ["HOUSEHOLD", "PERSON", "PERSON"] * 700,
            "household_source": ["ROSTER", None, "REGISTRY"] * 700,
            "subject_id": [f"S{rng.randrange(10**9)}" for _ in range(2100)],
        }
    ).with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(None)
        .otherwise(pl.col("subject_id"))
        .alias("subject_id")
    )
    assert pseudonym.warning_keys(key, frame).to_list() == [
        pseudonym.warning_key(key, *row) for row in frame.iter_rows()
    ]
