"""Great Expectations' workarounds (`pipelines/gate/gx_patches.py`): each is written against the
GE version pinned, a GE whose source of what a workaround replaces changed fails here, and the
patches give what GE's own code gives."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import importlib
import inspect
import re
import tomllib
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pytest

from pipelines.gate import gx_patches

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def ge_source(name: str) -> str:
    """The source of GE's `module:qualified.name` (a property's getter for a property)."""
    module, _, qualname = name.partition(":")
    found = importlib.import_module(module)
    for part in qualname.split("."):
        found = inspect.getattr_static(found, part)
    if isinstance(found, property):
        found = found.fget
    return inspect.getsource(found)


def digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def test_the_workarounds_are_written_against_the_ge_that_is_pinned_and_installed():
    pinned = [
        d
        for d in tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
        if re.match(r"great[-_]expectations\b", d)
    ]
    assert pinned == [f"great-expectations=={gx_patches.GE_VERSION}"]
    assert gx.__version__ == gx_patches.GE_VERSION
    assert {w.written_for for w in gx_patches.WORKAROUNDS} == {gx_patches.GE_VERSION}


@pytest.mark.parametrize(
    ("ours", "replaced", "recorded"),
    [(w.ours, name, d) for w in gx_patches.WORKAROUNDS for name, d in w.replaces],
)
def test_ges_code_that_a_workaround_replaces_is_the_code_it_was_written_against(
    ours, replaced, recorded
):
    """A GE upgrade that changes what a workaround replaces (or reads as GE does) fails here:
    read GE's new code, check `ours` against it, then record the new digest and version."""
    found = digest(ge_source(replaced))
    assert found == recorded, (
        f"{replaced} is not the code {ours} was written against "
        f"(GE {gx_patches.GE_VERSION}): its source digest is now {found}"
    )


@pytest.mark.parametrize("ours", sorted({w.ours for w in gx_patches.WORKAROUNDS}))
def test_each_workaround_names_where_it_is(ours):
    module, _, name = ours.partition(".")
    assert hasattr(importlib.import_module(f"pipelines.gate.{module}"), name), ours


def test_the_fingerprint_threshold_is_the_constant_ge_reads():
    from great_expectations.execution_engine import pandas_execution_engine

    assert pandas_execution_engine.HASH_THRESHOLD == 1e9
    with gx_patches.patched(validating=True):
        assert pandas_execution_engine.HASH_THRESHOLD == 0
    assert pandas_execution_engine.HASH_THRESHOLD == 1e9


def test_the_index_is_patched_with_its_context_and_its_file_together(tmp_path):
    with (
        pytest.raises(ValueError, match="both"),
        gx_patches.patched(index_links=tmp_path / "index_links.json"),
    ):
        pass


def test_configurations_are_built_once_only_while_a_validation_runs():
    """GE's configuration of an expectation, and the expectation of a configuration, are the
    same objects within `_configurations_kept` and built anew outside it, as GE makes them."""
    e = gxe.ExpectColumnValuesToBeInSet(column="x", value_set=["a", "b"])
    assert e.configuration is not e.configuration
    with gx_patches.patched(validating=True):
        kept = e.configuration
        assert (
            e.configuration is kept
            and kept
            == gxe.ExpectColumnValuesToBeInSet(column="x", value_set=["a", "b"]).configuration
        )
        assert kept.to_domain_obj() is kept.to_domain_obj()
    assert e.configuration is not e.configuration
    assert kept.to_domain_obj() is not kept.to_domain_obj()


METRIC_ARGUMENTS = [
    {"column": "county_code", "batch_id": "b1", "row_condition": None, "table": None},
    {"value_set": [f"{i:06d}" for i in range(150)], "parse_strings_as_datetimes": False},
    {"regex": r"^[0-9]{4}$", "mostly": 1.0, "result_format": {"result_format": "SUMMARY"}},
    {"column_list": ("a", "b"), "ignore_row_if": "never", "n": 3, "flag": True},
    {"mostly": float("nan"), "column": "x"},  # GE writes NaN as null
    {"value_set": {"b", "a"}, "column": "x"},  # a set: GE's way
    {"min_value": np.int64(3), "column": "x"},  # numpy: GE's way
    {"min_value": dt.date(2026, 9, 30), "column": "x"},  # a date: GE's way
    {"nested": {"k": [1, None, "v"]}, "column": "x"},
    {"column": "x"},  # one key: GE's way
    {},
]


@pytest.mark.parametrize("arguments", METRIC_ARGUMENTS)
def test_a_metric_is_named_as_ge_names_it(arguments, monkeypatch):
    """Within a validation the metrics' ids come from a shortcut for plain JSON arguments;
    they are the ids GE's own `IDDict.to_id` gives, for plain and other arguments alike."""
    from great_expectations.core import id_dict

    ge_to_id = id_dict.IDDict.to_id
    expected = id_dict.IDDict(copy.deepcopy(arguments)).to_id()
    ignoring = id_dict.IDDict(copy.deepcopy(arguments)).to_id(id_ignore_keys={"column"})
    converted = []
    convert = id_dict.convert_to_json_serializable
    monkeypatch.setattr(
        id_dict, "convert_to_json_serializable", lambda data: converted.append(1) or convert(data)
    )
    with gx_patches.patched(validating=True):
        assert id_dict.IDDict(copy.deepcopy(arguments)).to_id() == expected
        # GE's conversion is skipped exactly for plain arguments of more than one key
        assert bool(converted) == (len(arguments) > 1 and not gx_patches._plain_json(arguments))
        assert id_dict.IDDict(copy.deepcopy(arguments)).to_id(id_ignore_keys={"column"}) == (
            ignoring
        )
    assert id_dict.IDDict.to_id is ge_to_id
