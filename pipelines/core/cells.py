"""Values written as the text a department sends them in (extracts.md §2): identity numbers with
their check character, amounts in yuan, dates in the two layouts. The generator writes its rows
with these, and each check kind plants its bad value with them (`gate/kinds.py`).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence

from stdnum.cn import ric

from pipelines.core import gbt2260
from pipelines.core.quarters import Quarter
from pipelines.core.valuetypes import DATE_LAYOUTS

UNKNOWN_ADDRESS = "359999"  # never a GB/T 2260 code


def check_character(body17: str) -> str:
    """python-stdnum's check character for a 17-digit body (`calc_check_digit` ignores the last
    character of what it is given, so it is given the body plus a placeholder)."""
    return ric.calc_check_digit(body17 + "0")


def id_number(address: str, born: dt.date, sequence: int) -> str:
    """An 18-character number with the right check character; `sequence` is the three-digit
    order code (odd = male)."""
    body = f"{address}{born:%Y%m%d}{sequence % 1000:03d}"
    return body + check_character(body)


def id_birth_date(number: str) -> dt.date:
    return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def id_is_male(number: str) -> bool:
    return int(number[16]) % 2 == 1


def county_codes(quarter: Quarter) -> list[str]:
    return sorted(gbt2260.county_codes_in_force(quarter.end.year))


def money(cents: int, *, short: bool = False) -> str:
    """Yuan as text. `short` drops trailing zero decimals (`12.5`, `12`), as some exports do."""
    text = f"{cents // 100}.{cents % 100:02d}"
    return text.rstrip("0").rstrip(".") if short else text


def cents_of(text: str) -> int:
    return int((decimal.Decimal(text.strip()) * 100).to_integral_value())


def date_text(day: dt.date, fmt: str = "YYYY-MM-DD") -> str:
    return day.strftime(DATE_LAYOUTS[fmt].strftime)


def parse_date(
    text: str | None, formats: Sequence[str] = ("YYYY-MM-DD", "YYYYMMDD")
) -> dt.date | None:
    """A date in one of the allowed layouts, else None."""
    t = (text or "").strip()
    for layout in (DATE_LAYOUTS[f] for f in formats):
        day = _date_or_none(t, layout.strftime) if len(t) == layout.width else None
        if day is not None:
            return day
    return None


def _date_or_none(text: str, fmt: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text, fmt).date()
    except ValueError:
        return None  # not a real date in this layout
