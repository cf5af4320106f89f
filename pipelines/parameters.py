"""Policy parameters kept as data in `rules/parameters/`, values keyed by the date they take
effect (openfisca style), each with a unit and a reference. A value is looked up as in effect
on the quarter's end date `E` (policy.md §3)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines import RULES_DIR


class ParameterMissing(LookupError):
    """No value of a parameter is in effect on the date asked for."""


@dataclass(frozen=True)
class Parameter:
    name: str
    unit: str
    reference: str
    values: tuple[tuple[dt.date, Any], ...]  # (from, value), oldest first

    def at(self, day: dt.date) -> Any:
        current = None
        for start, value in self.values:
            if start <= day:
                current = (start, value)
        if current is None:
            raise ParameterMissing(f"parameter {self.name} has no value in effect on {day}")
        return current[1]


def _load(path: Path) -> Parameter:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    values = sorted((v["from"], v["value"]) for v in doc["values"])
    return Parameter(doc["name"], doc.get("unit", ""), doc.get("reference", ""), tuple(values))


@functools.cache
def parameters(directory: Path = RULES_DIR / "parameters") -> dict[str, Parameter]:
    out = {}
    for path in sorted(directory.glob("*.yaml")):
        p = _load(path)
        out[p.name] = p
    return out


def value(name: str, day: dt.date) -> Any:
    return parameters()[name].at(day)
