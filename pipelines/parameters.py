"""Policy parameters kept as data in `rules/parameters/`, values keyed by the date they take
effect (openfisca style), each with a unit and a reference. A value is looked up as in effect
on the quarter's end date `E` (policy.md §3).

A value is a number, or a mapping keyed as the file's `keyed_by` says: `program` (one value per
programme), `range` (`min` and `max`, both included) or `area` (6-digit codes; a county's own
value overrides its prefecture's, the first four digits + `00`). Numbers are read as exact
decimals: money is compared exactly, never through floating point.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
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
    keyed_by: str | None = None

    def at(self, day: dt.date) -> Any:
        current = None
        for start, value in self.values:
            if start <= day:
                current = (start, value)
        if current is None:
            raise ParameterMissing(f"parameter {self.name} has no value in effect on {day}")
        return current[1]

    def for_area(self, county_code: str, day: dt.date) -> Decimal:
        """The county's own value, else its prefecture's (policy.md §3)."""
        table = self.at(day)
        for code in (county_code, county_code[:4] + "00"):
            if code in table:
                return table[code]
        raise ParameterMissing(
            f"parameter {self.name} has no value for county {county_code} or its prefecture "
            f"on {day}"
        )


def _exact(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {str(k): _exact(v) for k, v in value.items()}
    return value


def _load(path: Path) -> Parameter:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    values = sorted((v["from"], _exact(v["value"])) for v in doc["values"])
    return Parameter(
        doc["name"],
        doc.get("unit", ""),
        doc.get("reference", ""),
        tuple(values),
        doc.get("keyed_by"),
    )


@functools.cache
def parameters(directory: Path = RULES_DIR / "parameters") -> dict[str, Parameter]:
    out = {}
    for path in sorted(directory.glob("*.yaml")):
        p = _load(path)
        out[p.name] = p
    return out


def value(name: str, day: dt.date) -> Any:
    return parameters()[name].at(day)
