"""GB/T 2260 administrative division codes with their years in force.

The table is the one python-stdnum carries (`stdnum/cn/loc.dat`), read through `stdnum.numdb`
as extracts.md §2 requires. Validity is judged by year.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from stdnum import numdb

_PERIOD = re.compile(r"^\[(\d{4})?-(\d{4})?\](.*)$")
FUJIAN = "35"
KINMEN = "350527"  # 金门县: not administered by Fujian; valid only inside identity numbers
OPEN_END = 9999


@dataclass(frozen=True)
class Period:
    code: str
    start: int  # first year in force (0 = before the table begins)
    end: int  # last year in force (9999 = still in force)
    name: str


@functools.cache
def periods() -> tuple[Period, ...]:
    """Every (code, years in force, name) of the table, one entry per period."""
    db = numdb.get("cn/loc")
    out: list[Period] = []
    for prefix, children in _walk(db.prefixes, ""):
        for text in children.get("county", "").split(","):
            m = _PERIOD.match(text)
            if m:
                start = int(m.group(1)) if m.group(1) else 0
                end = int(m.group(2)) if m.group(2) else OPEN_END
                out.append(Period(prefix, start, end, m.group(3)))
            elif text:
                out.append(Period(prefix, 0, OPEN_END, text))
    return tuple(out)


def _walk(prefixes, parent: str):
    for _length, low, high, props, children in prefixes:
        if low != high:  # numdb ranges are not used by loc.dat
            continue
        code = parent + low
        if len(code) == 6:
            yield code, props
        yield from _walk(children, code)


@functools.cache
def last_year_in_force() -> dict[str, int]:
    """Code -> the last year it was in force (9999 if still in force)."""
    last: dict[str, int] = {}
    for p in periods():
        last[p.code] = max(last.get(p.code, 0), p.end)
    return last


def county_codes_in_force(year: int) -> frozenset[str]:
    """Fujian county-level codes (区, 县, 县级市) in force in `year`.

    Excludes the province (350000), prefectures (xxxx00), 市辖区 and Kinmen (350527).
    """
    return frozenset(
        p.code
        for p in periods()
        if p.code.startswith(FUJIAN)
        and p.start <= year <= p.end
        and not p.code.endswith("00")
        and p.name != "市辖区"
        and p.code != KINMEN
    )


def address_code_valid_from(code: str, birth_year: int) -> bool:
    """An address code is valid on an identity number when it was in force at some time from the
    birth year on (GB 11643 takes the code in force when the number was assigned)."""
    last = last_year_in_force().get(code)
    return last is not None and last >= birth_year
