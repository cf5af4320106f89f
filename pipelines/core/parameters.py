"""Policy parameters kept as data in `rules/parameters/`, values keyed by the date they take
effect (openfisca style), each with a unit and a reference. A value is looked up as in effect
on the quarter's end date `E` (policy.md §3).

A value is a number, or a mapping keyed as the file's `keyed_by` says: `program` (one value per
programme), `range` (`min` and `max`, both included) or `area` (6-digit codes; a county's own
value overrides its prefecture's, the first four digits + `00`). Numbers are read as exact
decimals: money is compared exactly, never through floating point.

A file is checked when it is loaded, and refused with an error naming the file and the parameter:
- `name` is the file's name, `unit` is one of `UNITS` (it says what kind of number the value is)
  and `reference` is given;
- every value has a `from` date, the dates ascend as written (no date twice), and no value is
  empty;
- no gap: a key (programme, area, `min`/`max`) that has a value keeps one at every later date;
- a value for every key the rules look up, from the first date on: every programme of the
  roster (`mca.assistance_roster`'s `program` codes) for `program`, every Fujian prefecture in
  force for `area`, both `min` ≤ `max` for `range`.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from pipelines.core import gbt2260
from pipelines.core.contracts import all_contracts
from pipelines.core.departments import ROSTER
from pipelines.core.resources import PARAMETERS_DIR, read_yaml

KEYED_BY = (None, "program", "range", "area")
# A unit begins with one of these words; the word says what kind of number a value must be.
UNITS = {
    "yuan": "amount",  # money: non-negative, at most two decimals
    "years": "whole",
    "quarters": "whole",
    "consecutive evaluated quarters": "whole",
    "residential properties": "whole",
    "share": "fraction",  # 0 to 1
    "ratio": "fraction",
    "multiple": "positive",
}


class ParameterMissing(LookupError):
    """No value of a parameter is in effect on the date asked for."""


class ParameterError(ValueError):
    """A parameter file that does not follow this module's rules."""


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

    def in_effect(self, first: dt.date, last: dt.date) -> list[Any]:
        """Every value in effect on some day from `first` to `last` (both included), oldest
        first: what must hold through a span of quarters holds for each of them."""
        ends = [start for start, _ in self.values[1:]] + [dt.date.max]
        return [
            value
            for (start, value), end in zip(self.values, ends, strict=True)
            if start <= last and end > first
        ]

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


def exact(value: Any) -> Any:
    """A value as read from YAML, its numbers as exact decimals (a reform's too: `whatif`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {str(k): exact(v) for k, v in value.items()}
    return value


def unit_kind(unit: str) -> str | None:
    """What kind of number a unit's values are (`UNITS`): amount, whole, fraction or positive."""
    for word in sorted(UNITS, key=len, reverse=True):
        if unit == word or unit.startswith(word + " "):
            return UNITS[word]
    return None


def check_number(value: Any, kind: str, fail) -> None:
    """`fail(message)` unless `value` is a number of the unit's kind (`unit_kind`)."""
    if not isinstance(value, Decimal):
        fail(f"value {value!r} is not a number")
    if value < 0:
        fail(f"value {value} is negative")
    if kind == "amount" and value != value.quantize(Decimal("0.01")):
        fail(f"value {value} has more than two decimals (an amount in yuan)")
    if kind == "whole" and value != value.to_integral_value():
        fail(f"value {value} is not a whole number")
    if kind == "fraction" and value > 1:
        fail(f"value {value} is more than 1 (a share)")
    if kind == "positive" and value == 0:
        fail("value 0 is not a positive multiple")


def _required_keys(keyed_by: str | None, day: dt.date) -> set[str]:
    if keyed_by == "program":
        roster = all_contracts()[ROSTER]
        return set(roster.column("program").codes or ())
    if keyed_by == "area":
        return {
            p.code
            for p in gbt2260.periods()
            if p.code.startswith(gbt2260.FUJIAN)
            and p.code.endswith("00")
            and not p.code.endswith("0000")
            and p.start <= day.year <= p.end
        }
    if keyed_by == "range":
        return {"min", "max"}
    return set()


def load_parameter(path: Path) -> Parameter:
    """Read and check one parameter file (the module docstring lists the checks)."""
    where = path.name
    try:
        doc = read_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ParameterError(f"{where}: cannot be read as YAML ({type(e).__name__})") from None
    if not isinstance(doc, dict):
        raise ParameterError(f"{where}: expected a mapping with name, unit, reference, values")
    name = str(doc.get("name") or path.stem)

    def fail(message: str):
        raise ParameterError(f"{where}: parameter {name}: {message}")

    if name != path.stem:
        fail(f"the file must be named {name}.yaml")
    unit = str(doc.get("unit") or "").strip()
    kind = unit_kind(unit)
    if kind is None:
        fail(f"unit {unit!r} is not one of {sorted(UNITS)} (optionally followed by words)")
    if not str(doc.get("reference") or "").strip():
        fail("reference is missing (the legal or spec reference of the values)")
    keyed_by = doc.get("keyed_by")
    if keyed_by not in KEYED_BY:
        fail(f"keyed_by {keyed_by!r} is not one of {KEYED_BY}")
    raw = doc.get("values")
    if not isinstance(raw, list) or not raw:
        fail("values must be a list of {from: <date>, value: ...}")
    values: list[tuple[dt.date, Any]] = []
    for i, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("from"), dt.date):
            fail(f"value {i} has no `from` date (YYYY-MM-DD)")
        day, value = entry["from"], exact(entry.get("value"))
        if values and day <= values[-1][0]:
            fail(f"value {i} from {day} does not come after {values[-1][0]}: dates ascend")
        if value is None or value == {}:
            fail(f"value {i} from {day} is empty")
        if keyed_by is None:
            check_number(value, kind, fail)
        else:
            if not isinstance(value, dict):
                fail(f"value {i} from {day} must be a mapping (keyed_by {keyed_by})")
            for key, v in value.items():
                check_number(v, "whole" if keyed_by == "range" else kind, fail)
                if keyed_by == "area" and not (len(key) == 6 and key.isdigit()):
                    fail(f"value {i} from {day}: {key!r} is not a 6-digit area code")
            if values:
                dropped = sorted(set(values[-1][1]) - set(value))
                if dropped:
                    fail(f"value {i} from {day} leaves a gap: no value for {', '.join(dropped)}")
            absent = sorted(_required_keys(keyed_by, day) - set(value))
            if absent:
                fail(f"value {i} from {day} has no value for {', '.join(absent)}")
            if keyed_by == "range" and value["min"] > value["max"]:
                fail(f"value {i} from {day}: min {value['min']} is above max {value['max']}")
        values.append((day, value))
    return Parameter(name, unit, str(doc["reference"]), tuple(values), keyed_by)


@functools.cache
def parameters(directory: Path = PARAMETERS_DIR) -> dict[str, Parameter]:
    """Every parameter file of the folder, checked (read once per process: they ship with the
    package and do not change while it runs)."""
    return {p.name: p for p in map(load_parameter, sorted(Path(directory).glob("*.yaml")))}


def value(name: str, day: dt.date) -> Any:
    return parameters()[name].at(day)
