"""A realistic `mps/residents` CSV of any size, deterministic for a seed (extracts.md §3).

Vectorised (numpy draws, polars string building), written in chunks of a million rows so a
province-sized file (42 M rows, ~4 GB) needs only a few hundred MB to generate. Files are cached
under `.bench/`, keyed by rows, seed and generator version, so a rerun skips generation.

What the rows look like:
- identity numbers are unique by construction: each address-code namespace (a county in force in
  2026, or an abolished Fujian code for ~3 % of people, born no later than its last year in force)
  maps the n-th person drawn into it through an affine permutation of (birth day × sequence);
  the check character is computed here in numpy (ISO 7064 MOD 11-2), independently of
  `pipelines.core.idnumbers`, so the gate's count of bad check characters is a cross-check;
  ~10 % of `X` are written `x`;
- households of 1–7 people (mean ≈ 3) share `hukou_no`, `county_code` (in force in 2026),
  `residence_type` and mostly the surname; the first member is the `HEAD`;
- `birth_date` equals the ID's date, ~3 % written `YYYYMMDD`; `gender` agrees with the 17th digit;
- ~7 % are not `ACTIVE` and carry a `status_date` between birth and E;
- 0.2 % planted bad rows, in equal shares of `PLANTS`, each breaking exactly one rule, so the gate's
  quarantine can be checked reason by reason (a duplicate plant quarantines two rows).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.core import gbt2260
from pipelines.core.contracts import all_contracts

# names and household shapes as the synthetic province draws them
from pipelines.generate.province import GIVEN, HOUSEHOLD_SIZE_P, RELATIONS, SURNAMES

GENERATOR_VERSION = 3  # 3: names drawn from pipelines.generate.province
QUARTER = "2026Q3"
END = dt.date(2026, 9, 30)
FIRST_BIRTH = dt.date(1930, 1, 1)
CHUNK_ROWS = 1_000_000
BYTES_PER_ROW = 86  # measured: 42 M rows make 3.58 GB
BAD_SHARE = 0.002
OLD_CODE_SHARE = 0.03
HEADER = [c.name for c in all_contracts()[("mps", "residents")].columns]
# planted kind -> the quarantine reason it must produce
PLANTS = {
    "bad_check_character": "id_number.check_character",
    "unknown_address_code": "id_number.address_code",
    "county_not_county_level": "county_code.invalid_county",
    "gender_mismatch": "gender.disagrees_with_id",
    "birth_date_mismatch": "birth_date.disagrees_with_id",
    "duplicate_id": "duplicate_key",
    "status_date_missing": "status_date.required_unless_active",
}
_KINDS = list(PLANTS)
# never in GB/T 2260; one per namespace, so a planted number cannot collide with another
UNKNOWN_CODE_BASE = 358000
NOT_COUNTY_LEVEL = "350100"  # 福州市, a prefecture

RELATION_P = [0.30, 0.45, 0.10, 0.08, 0.03, 0.04]
STATUSES = ["ACTIVE", "DECEASED", "MOVED_OUT", "CANCELLED"]
STATUS_P = [0.93, 0.045, 0.02, 0.005]
CHECK_CHARACTERS = list("0123456789Xx")  # index 11: a lower-case x (accepted)
_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_EPOCH = dt.date(1970, 1, 1)


@dataclass
class Generated:
    csv: Path
    landing: Path
    rows: int
    seed: int
    bytes: int
    seconds: float  # generation time (of the run that made the file)
    cached: bool
    planted: dict[str, int]  # kind -> planted rows
    expected_quarantined: int
    expected_reason_rows: dict[str, int]


@dataclass(frozen=True)
class _Namespace:
    code: str
    first_day: int  # days since 1970-01-01
    days: int  # birth days available


def _day(d: dt.date) -> int:
    return (d - _EPOCH).days


def namespaces() -> tuple[list[_Namespace], int]:
    """Address-code namespaces: the counties in force in 2026 (first `n_current`), then the
    abolished Fujian county-level codes, each limited to births up to its last year in force."""
    current = sorted(gbt2260.county_codes_in_force(END.year))
    last = gbt2260.last_year_in_force()
    abolished = sorted(
        c
        for c, y in last.items()
        if c.startswith(gbt2260.FUJIAN)
        and y < END.year
        and y >= FIRST_BIRTH.year
        and not c.endswith("00")
    )
    out = [_Namespace(c, _day(FIRST_BIRTH), _day(END) - _day(FIRST_BIRTH) + 1) for c in current]
    for c in abolished:
        stop = min(dt.date(last[c], 12, 31), END)
        out.append(_Namespace(c, _day(FIRST_BIRTH), _day(stop) - _day(FIRST_BIRTH) + 1))
    return out, len(current)


def _zipf(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


class _State:
    """What carries across chunks: people drawn per namespace, households used."""

    def __init__(self, seed: int):
        self.ns, self.n_current = namespaces()
        k = len(self.ns)
        rng = np.random.default_rng([seed, 0xC0DE])
        self.county_p = rng.dirichlet(np.full(self.n_current, 4.0))
        self.old_p = rng.dirichlet(np.full(k - self.n_current, 2.0))
        self.size = np.array([n.days * 1000 for n in self.ns], dtype=np.int64)
        self.first_day = np.array([n.first_day for n in self.ns], dtype=np.int64)
        self.add = rng.integers(0, self.size)
        self.mult = np.array([_coprime_multiplier(int(m), rng) for m in self.size], dtype=np.int64)
        self.drawn = np.zeros(k, dtype=np.int64)
        self.households = 0
        self.codes = pl.Series([n.code for n in self.ns], dtype=pl.String)
        self.code_int = np.array([int(n.code) for n in self.ns], dtype=np.int64)
        unknown = {str(UNKNOWN_CODE_BASE + i) for i in range(k)}
        if unknown & gbt2260.last_year_in_force().keys():
            raise ValueError("the unknown address codes of planted rows exist in GB/T 2260")
        self.surname_p = _zipf(len(SURNAMES), 0.9)


def _coprime_multiplier(m: int, rng: np.random.Generator) -> int:
    while True:
        a = int(rng.integers(m // 3, m - 1))
        if math.gcd(a, m) == 1:
            return a


def _chunk(state: _State, seed: int, index: int, n: int) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng([seed, index])
    # households
    sizes = rng.choice(len(HOUSEHOLD_SIZE_P), size=n // 2 + 8, p=HOUSEHOLD_SIZE_P) + 1
    ends = np.cumsum(sizes)
    k = int(np.searchsorted(ends, n)) + 1
    hh = np.repeat(np.arange(k), sizes[:k])[:n]
    pos = np.arange(n) - (ends - sizes)[hh]
    hh_county = rng.choice(state.n_current, size=k, p=state.county_p)
    hh_urban = rng.random(k) < 0.62
    hh_surname = rng.choice(len(SURNAMES), size=k, p=state.surname_p)
    hukou = state.households + hh
    state.households += k
    county = hh_county[hh]

    # identity numbers: unique (namespace, n-th person drawn into it) -> (birth day, sequence)
    old = rng.random(n) < OLD_CODE_SHARE
    old_code = state.n_current + rng.choice(len(state.old_p), size=n, p=state.old_p)
    ns = np.where(old, old_code, county)
    order = np.argsort(ns, kind="stable")
    counts = np.bincount(ns, minlength=len(state.ns))
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[ns[order]] + state.drawn[ns[order]]
    state.drawn += counts
    if (state.drawn > state.size).any():
        raise ValueError("more people than (birth day × sequence) slots in an address code")
    slot = (state.mult[ns] * rank + state.add[ns]) % state.size[ns]
    birth_day = state.first_day[ns] + slot // 1000
    seq = slot % 1000

    status = rng.choice(len(STATUSES), size=n, p=STATUS_P)
    span = _day(END) - birth_day + 1
    status_day = birth_day + (rng.random(n) * span).astype(np.int64)
    surname = np.where(
        (pos == 0) | (rng.random(n) < 0.8),
        hh_surname[hh],
        rng.choice(len(SURNAMES), size=n, p=state.surname_p),
    )
    relation = np.where(
        pos == 0,
        -1,
        np.where(
            (pos == 1) & (rng.random(n) < 0.7),
            0,
            rng.choice(len(RELATIONS), size=n, p=RELATION_P),
        ),
    )

    # planted bad rows, on odd rows only so a duplicate's original (the row before) is clean
    n_bad = round(n * BAD_SHARE)
    plant = np.full(n, -1, dtype=np.int8)
    at = rng.choice(n // 2, size=n_bad, replace=False) * 2 + 1
    plant[at] = np.arange(n_bad) % len(_KINDS)

    address = state.code_int[ns]
    unknown = plant == _KINDS.index("unknown_address_code")
    address[unknown] = UNKNOWN_CODE_BASE + ns[unknown]
    check = _check_index(address, birth_day, seq)
    bad = plant == _KINDS.index("bad_check_character")
    check[bad] = (check[bad] + 1) % 11
    check[(check == 10) & (rng.random(n) < 0.1)] = 11

    f = pl.DataFrame(
        {
            "address": address.astype(np.int32),
            "check": check.astype(np.int8),
            "birth": birth_day.astype(np.int32),
            "seq": seq.astype(np.int32),
            "surname": surname.astype(np.int32),
            "g1": rng.integers(len(GIVEN), size=n, dtype=np.int32),
            "g2": rng.integers(len(GIVEN), size=n, dtype=np.int32),
            "two": rng.random(n) < 0.7,
            "hukou": hukou.astype(np.int64),
            "county": county.astype(np.int32),
            "urban": hh_urban[hh],
            "relation": relation.astype(np.int8),
            "status": status.astype(np.int8),
            "status_day": status_day.astype(np.int32),
            "compact": rng.random(n) < 0.03,
            "plant": plant,
        }
    )
    return _texts(f, state), plant


def _check_index(address: np.ndarray, day: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """ISO 7064 MOD 11-2 over address (6) + birth date YYYYMMDD (8) + sequence (3): the index of
    the check character in "0123456789X"."""
    d = day.astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    ymd = (
        (month.astype("datetime64[Y]").astype(np.int64) + 1970) * 10000
        + (month.astype(np.int64) % 12 + 1) * 100
        + (d - month).astype(np.int64)
        + 1
    )
    body = address.astype(np.int64) * 10**11 + ymd * 1000 + seq
    total = np.zeros(len(body), dtype=np.int64)
    for i, w in enumerate(_WEIGHTS):
        total += (body // 10 ** (16 - i)) % 10 * w
    return (12 - total % 11) % 11


def _lookup(values: list[str], idx: str) -> pl.Expr:
    return pl.lit(pl.Series(values, dtype=pl.String)).gather(pl.col(idx))


def _texts(f: pl.DataFrame, state: _State) -> pl.DataFrame:
    plant = pl.col("plant")

    def planted(kind: str) -> pl.Expr:
        return plant == _KINDS.index(kind)

    birth = pl.col("birth").cast(pl.Date)
    f = f.with_columns(
        ymd=birth.dt.strftime("%Y%m%d"),
        iso=birth.dt.strftime("%Y-%m-%d"),
        next_iso=birth.dt.offset_by("1d").dt.strftime("%Y-%m-%d"),
    )
    id_number = (
        pl.col("address").cast(pl.String)
        + pl.col("ymd")
        + pl.col("seq").cast(pl.String).str.zfill(3)
        + _lookup(CHECK_CHARACTERS, "check")
    )
    male = pl.col("seq") % 2 == 1
    gender = pl.when(male ^ planted("gender_mismatch")).then(pl.lit("M")).otherwise(pl.lit("F"))
    birth_text = (
        pl.when(planted("birth_date_mismatch"))
        .then(pl.col("next_iso"))
        .when(pl.col("compact"))
        .then(pl.col("ymd"))
        .otherwise(pl.col("iso"))
    )
    name = (
        _lookup(SURNAMES, "surname")
        + _lookup(GIVEN, "g1")
        + pl.when(pl.col("two")).then(_lookup(GIVEN, "g2")).otherwise(pl.lit(""))
    )
    county = _lookup(list(state.codes[: state.n_current]), "county")
    status = (
        pl.when(planted("status_date_missing"))
        .then(pl.lit("DECEASED"))
        .otherwise(_lookup(STATUSES, "status"))
    )
    status_date = pl.when((pl.col("status") != 0) & ~planted("status_date_missing")).then(
        pl.col("status_day").cast(pl.Date).dt.strftime("%Y-%m-%d")
    )
    f = f.with_columns(
        id_number=id_number,
        name=name,
        gender=gender,
        birth_date=birth_text,
        hukou_no=county + pl.col("hukou").cast(pl.String).str.zfill(9),
        relation=pl.when(pl.col("relation") < 0)
        .then(pl.lit("HEAD"))
        .otherwise(_lookup(RELATIONS, "relation")),
        county_code=pl.when(planted("county_not_county_level"))
        .then(pl.lit(NOT_COUNTY_LEVEL))
        .otherwise(county),
        residence_type=pl.when(pl.col("urban")).then(pl.lit("URBAN")).otherwise(pl.lit("RURAL")),
        status=status,
        status_date=status_date,
    )
    dup = planted("duplicate_id")
    return f.select(
        pl.when(dup).then(pl.col(c).shift(1)).otherwise(pl.col(c)).alias(c)
        if c in ("id_number", "gender", "birth_date")
        else pl.col(c)
        for c in HEADER
    )


def cache_dir(base: Path, rows: int, seed: int) -> Path:
    return base / f"residents-v{GENERATOR_VERSION}-r{rows}-s{seed}"


def generate(base: Path, rows: int, seed: int, log=print) -> Generated:
    """The cached file for (rows, seed), generated first when absent."""
    folder = cache_dir(base, rows, seed)
    landing = folder / "landing"
    csv = landing / QUARTER / "mps" / "residents.csv"
    meta_path = folder / "meta.json"
    if meta_path.is_file() and csv.is_file():
        meta = json.loads(meta_path.read_text())
        if meta["bytes"] == csv.stat().st_size:
            return Generated(**{**meta, "csv": csv, "landing": landing, "cached": True})
    csv.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"residents.csv.tmp{os.getpid()}"
    t0 = time.perf_counter()
    state = _State(seed)
    planted = np.zeros(len(_KINDS), dtype=np.int64)
    chunks = math.ceil(rows / CHUNK_ROWS)
    with tmp.open("wb") as out:
        for i in range(chunks):
            n = min(CHUNK_ROWS, rows - i * CHUNK_ROWS)
            frame, plant = _chunk(state, seed, i + 1, n)
            frame.write_csv(out, include_header=i == 0)
            planted += np.bincount(plant[plant >= 0], minlength=len(_KINDS))
            if chunks > 4 and (i + 1) % max(1, chunks // 10) == 0:
                log(f"  generated {min(rows, (i + 1) * CHUNK_ROWS):,} of {rows:,} rows")
    os.replace(tmp, csv)
    seconds = time.perf_counter() - t0
    counts = {k: int(c) for k, c in zip(_KINDS, planted, strict=True)}
    reasons = {PLANTS[k]: c * (2 if k == "duplicate_id" else 1) for k, c in counts.items()}
    gen = Generated(
        csv=csv,
        landing=landing,
        rows=rows,
        seed=seed,
        bytes=csv.stat().st_size,
        seconds=seconds,
        cached=False,
        planted=counts,
        expected_quarantined=sum(reasons.values()),
        expected_reason_rows=reasons,
    )
    meta = {k: v for k, v in asdict(gen).items() if k not in ("csv", "landing", "cached")}
    meta_path.write_text(json.dumps(meta, indent=2))
    return gen
