"""Quarters as the spec writes them (`2026Q3`) and their dates."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    q: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        q = cls.named(text)
        if q is None:
            raise ValueError(f"not a quarter: {text!r} (expected e.g. 2026Q3)")
        return q

    @classmethod
    def named(cls, text: str) -> Quarter | None:
        """The quarter a name such as a folder's stands for, else None."""
        m = _QUARTER.match(text.strip().upper())
        return cls(int(m.group(1)), int(m.group(2))) if m else None

    def __str__(self) -> str:
        return f"{self.year}Q{self.q}"

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 3 * self.q - 2, 1)

    @property
    def end(self) -> dt.date:
        """`E`: the last day of the quarter."""
        nxt = self.next()
        return nxt.start - dt.timedelta(days=1)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.q == 1 else Quarter(self.year, self.q - 1)

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.q == 4 else Quarter(self.year, self.q + 1)

    def window(self, size: int = 4) -> list[Quarter]:
        """This quarter and the `size - 1` before it, oldest first (policy.md W)."""
        out = [self]
        for _ in range(size - 1):
            out.append(out[-1].previous())
        return out[::-1]

    @classmethod
    def containing(cls, day: dt.date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)


def quarter_range(first: str, last: str) -> list[str]:
    q, stop = Quarter.parse(first), Quarter.parse(last)
    out = []
    while q <= stop:
        out.append(str(q))
        q = q.next()
    return out


def parse_quarter_list(text: str) -> list[Quarter]:
    """`2025Q4,2026Q1` or a range `2025Q4..2026Q2`; returned sorted, duplicates removed."""
    quarters: set[Quarter] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if ".." in part:
            a, b = part.split("..", 1)
            quarters.update(Quarter.parse(x) for x in quarter_range(a, b))
        else:
            quarters.add(Quarter.parse(part))
    return sorted(quarters)
