"""A synthetic Fujian population: people and registry households, vectorised and seeded.

The population is drawn once for a seed (`Population`); `registry_at(E)` is the household
registry (mps/residents) as it stands at a quarter's end `E`: everyone born by `E`, with the
status they have at `E`. People leave (die, move out, get cancelled) on their own `exit_day`, so
consecutive quarters show the same people, one quarter older, with a few deaths and moves each.

- identity numbers are unique by construction: within one (address code, birth day, gender) the
  n-th person takes sequence `start + 2n` (odd = male); the check character is
  `idnumbers.check_character`;
- ~3 % of people born before 2000 carry an abolished Fujian address code whose last year in force
  is at or after their birth year (GB 11643 keeps the code the number was assigned with);
- households of 1–7 (mean ≈ 3) share `hukou_no`, county (in force in 2026), residence type and
  mostly the surname; the first member is the one `HEAD`, an adult;
- `birth_date` is written `YYYYMMDD` on ~3 % of rows, as mps may;
- ~5 % left the registry before 2024, ~2 % more leave between 2024 and 2027 (deaths mostly old).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.core import gbt2260, idnumbers

FIRST_BIRTH = dt.date(1930, 1, 1)
LAST_BIRTH = dt.date(2026, 12, 31)
_EPOCH = dt.date(1970, 1, 1)
SCALES = {"test": 2_000, "county": 50_000, "city": 1_000_000, "province": 42_000_000}
SURNAMES = list(
    "陈林黄张吴王李郑刘杨许蔡谢洪郭邱曾廖赖徐周叶苏庄江吕何罗高潘朱钟施余卢游詹胡彭沈梁"
    "翁柯颜傅魏方戴杜肖姚宋邓范邹阮韩丁孙康连卓薛温石马熊董程唐曹袁冯汪蒋田欧章涂严"
)
GIVEN = list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红娥玲芬燕彬鑫宇浩凯健俊帆帅"
    "旭宁龙欣怡佳琪婷雪慧颖晨梓涵子轩思源一诺雨桐航建国志文辉金水福禄寿喜春秋冬海山清泉"
)
HOUSEHOLD_SIZE_P = [0.18, 0.25, 0.22, 0.17, 0.10, 0.05, 0.03]
RELATIONS = ["SPOUSE", "CHILD", "PARENT", "GRANDCHILD", "SIBLING", "OTHER"]
EXITS = ["DECEASED", "MOVED_OUT", "CANCELLED"]
OLD_CODE_SHARE = 0.03
UNIFORMS = 8  # stable per-person random numbers u0..u7 the extracts draw on
CHUNK_SEQUENCES = 6  # per gender, per chunk, for identity numbers under abolished codes


def day_number(d: dt.date) -> int:
    return (d - _EPOCH).days


def counties_for(scale: str) -> list[str]:
    """County codes in force in 2026: one county (鼓楼区) for `test`/`county`, Fuzhou's
    counties for `city`, all of Fujian's for `province`."""
    every = sorted(gbt2260.county_codes_in_force(2026))
    if scale in ("test", "county"):
        return ["350102"]
    if scale == "city":
        return [c for c in every if c.startswith("3501")]
    return every


def abolished_codes() -> tuple[list[str], np.ndarray]:
    last = gbt2260.last_year_in_force()
    codes = sorted(
        c
        for c, y in last.items()
        if c.startswith(gbt2260.FUJIAN) and FIRST_BIRTH.year <= y < 2026 and not c.endswith("00")
    )
    return codes, np.array([last[c] for c in codes], dtype=np.int64)


@dataclass
class Population:
    """One row per person ever in the registry (numeric columns; text made per quarter)."""

    people: pl.DataFrame
    counties: list[str]
    seed: int


def build(
    scale: str,
    seed: int,
    n: int | None = None,
    *,
    counties: list[str] | None = None,
    chunk: int | None = None,
    offset: tuple[int, int] = (0, 0),
) -> Population:
    """The population of `scale` (all at once), or with `chunk` one chunk of the province
    (`counties`, `n` people): its own random stream, person and household numbers starting at
    `offset` (pid, hh), and identity numbers with abolished codes (which any chunk may carry)
    taking sequence codes from the chunk's own range, so that numbers stay unique across chunks.
    """
    n = n or SCALES[scale]
    counties = counties or counties_for(scale)
    rng = np.random.default_rng([seed, 1] if chunk is None else [seed, 1, chunk])
    sizes = rng.choice(len(HOUSEHOLD_SIZE_P), size=n // 2 + 16, p=HOUSEHOLD_SIZE_P) + 1
    ends = np.cumsum(sizes)
    k = int(np.searchsorted(ends, n)) + 1
    hh = np.repeat(np.arange(k), sizes[:k])[:n]
    pos = np.arange(n) - (ends - sizes)[hh]
    weights = rng.dirichlet(np.full(len(counties), 4.0))
    hh_county = rng.choice(len(counties), size=k, p=weights)
    hh_urban = rng.random(k) < 0.62
    hh_surname = rng.integers(0, len(SURNAMES), size=k)

    first, last = day_number(FIRST_BIRTH), day_number(LAST_BIRTH)
    # ages: heads adults (born 1945–2001), the others over the whole span, fewer of the oldest
    head_birth = rng.integers(day_number(dt.date(1945, 1, 1)), day_number(dt.date(2001, 12, 31)), n)
    span = last - first
    other_birth = first + (span * rng.power(2.0, n)).astype(np.int64)
    birth = np.where(pos == 0, head_birth, other_birth)
    birth_year = (birth.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)) + 1970

    county = hh_county[hh]
    codes_int = np.array([int(c) for c in counties], dtype=np.int64)
    address = codes_int[county]
    old_codes, old_last = abolished_codes()
    pick = rng.integers(0, len(old_codes), n)
    old = (
        (birth_year < 2000)
        & (rng.random(n) < OLD_CODE_SHARE * 1.4)
        & (old_last[pick] >= birth_year)
    )
    address = np.where(old, np.array([int(c) for c in old_codes], dtype=np.int64)[pick], address)
    male = rng.random(n) < 0.51

    # exits: historic (before 2024) or during the quarters (2024–2027); deaths mostly old
    u = rng.random(n)
    exit_day = np.full(n, np.iinfo(np.int32).max, dtype=np.int64)
    historic = u < 0.05
    recent = (u >= 0.05) & (u < 0.07)
    start_2024, end_2027 = day_number(dt.date(2024, 1, 1)), day_number(dt.date(2027, 12, 31))
    exit_day = np.where(
        historic & (birth < start_2024),
        birth + ((start_2024 - birth) * rng.random(n)).astype(np.int64),
        exit_day,
    )
    exit_day = np.where(recent, rng.integers(start_2024, end_2027, n), exit_day)
    exit_day = np.maximum(exit_day, birth)
    old_person = birth_year < 1960
    exit_kind = np.where(
        old_person,
        rng.choice(3, size=n, p=[0.85, 0.12, 0.03]),
        rng.choice(3, size=n, p=[0.1, 0.8, 0.1]),
    )
    # relation to the head follows the age gap: a spouse is of the head's generation, a child
    # 16–45 years younger, a grandchild more, a parent 16+ years older (indices into RELATIONS)
    gap = (birth - birth[np.flatnonzero(pos == 0)][hh]) / 365.25
    same_generation = np.where(
        (pos == 1) & (rng.random(n) < 0.85), 0, np.where(rng.random(n) < 0.6, 4, 5)
    )
    relation = np.select(
        [pos == 0, gap > 45, gap > 15, gap < -15],
        [-1, 3, 1, 2],
        default=same_generation,
    )
    surname = np.where(
        (pos == 0) | (rng.random(n) < 0.8), hh_surname[hh], rng.integers(0, len(SURNAMES), n)
    )
    f = pl.DataFrame(
        {
            "pid": np.arange(n, dtype=np.int64) + offset[0],
            "hh": hh.astype(np.int64) + offset[1],
            "pos": pos.astype(np.int32),
            "county": county.astype(np.int32),
            "urban": hh_urban[hh],
            "address": address,
            "birth": birth.astype(np.int32),
            "male": male,
            "r": rng.integers(0, 250, n).astype(np.int32),
            "surname": surname.astype(np.int32),
            "g1": rng.integers(0, len(GIVEN), n).astype(np.int32),
            "g2": np.where(rng.random(n) < 0.7, rng.integers(0, len(GIVEN), n), -1).astype(
                np.int32
            ),
            "relation": relation.astype(np.int8),
            "exit_day": exit_day.astype(np.int32),
            "exit_kind": exit_kind.astype(np.int8),
            "hh_u": rng.random(k)[hh],
            **{f"u{i}": rng.random(n) for i in range(UNIFORMS)},
        }
    )
    # unique sequence within (address, birth day, gender): start + 2·rank (odd = male)
    rank = pl.int_range(pl.len()).over("address", "birth", "male")
    f = f.with_columns(
        seq=((pl.col("r").first().over("address", "birth", "male") + rank) * 2 % 1000)
        + pl.col("male").cast(pl.Int32)
    )
    if chunk is not None:
        # abolished codes appear in every chunk: chunk c takes sequences 12c..12c+11
        if chunk >= 1000 // (2 * CHUNK_SEQUENCES):
            raise ValueError(f"chunk {chunk}: no sequence codes left for abolished codes")
        old_address = pl.col("address").is_in(pl.Series([int(c) for c in old_codes]).implode())
        f = f.with_columns(rank=rank.cast(pl.Int32))
        if f.filter(old_address & (pl.col("rank") >= CHUNK_SEQUENCES)).height:
            raise ValueError(f"chunk {chunk}: too many namesakes under an abolished code")
        f = f.with_columns(
            seq=pl.when(old_address)
            .then((chunk * CHUNK_SEQUENCES + pl.col("rank")) * 2 + pl.col("male").cast(pl.Int32))
            .otherwise(pl.col("seq"))
        ).drop("rank")
    birth_date = pl.col("birth").cast(pl.Date)
    body = (
        pl.col("address").cast(pl.String)
        + birth_date.dt.strftime("%Y%m%d")
        + pl.col("seq").cast(pl.String).str.zfill(3)
    )
    lookup_sur = pl.lit(pl.Series(SURNAMES)).gather(pl.col("surname"))
    lookup_g1 = pl.lit(pl.Series(GIVEN)).gather(pl.col("g1"))
    lookup_g2 = pl.lit(pl.Series(GIVEN + [""])).gather(
        pl.when(pl.col("g2") < 0).then(len(GIVEN)).otherwise(pl.col("g2"))
    )
    f = f.with_columns(body=body).with_columns(
        id_number=pl.col("body") + idnumbers.check_character(pl.col("body")),
        name=lookup_sur + lookup_g1 + lookup_g2,
        county_code=pl.lit(pl.Series(counties)).gather(pl.col("county")),
    )
    return Population(f.drop("body", "r", "surname", "g1", "g2"), counties, seed)


def at(pop: Population, end: dt.date) -> pl.DataFrame:
    """Everyone born by `end`, with `age` and `status`/`status_day` at `end`."""
    e = day_number(end)
    return (
        pop.people.filter(pl.col("birth") <= e)
        .with_columns(
            age=((e - pl.col("birth")) / 365.25).floor().cast(pl.Int32),
            active=pl.col("exit_day") > e,
        )
        .with_columns(
            status=pl.when(pl.col("active"))
            .then(pl.lit("ACTIVE"))
            .otherwise(pl.lit(pl.Series(EXITS)).gather(pl.col("exit_kind").cast(pl.Int32))),
        )
    )


def relation_text() -> pl.Expr:
    """`relation` as the registry (and the roster, for the same household) writes it."""
    return (
        pl.when(pl.col("relation") < 0)
        .then(pl.lit("HEAD"))
        .otherwise(pl.lit(pl.Series(RELATIONS)).gather(pl.col("relation").clip(0).cast(pl.Int32)))
    )


def residents(people: pl.DataFrame) -> pl.DataFrame:
    """mps/residents as text, in canonical column order."""
    date = "%Y-%m-%d"
    return people.select(
        "id_number",
        "name",
        gender=pl.when(pl.col("male")).then(pl.lit("M")).otherwise(pl.lit("F")),
        # mps may send compact dates (extracts.md §2); ~3 % of its rows do
        birth_date=pl.when((pl.col("u0") * 1e3) % 1.0 < 0.03)
        .then(pl.col("birth").cast(pl.Date).dt.strftime("%Y%m%d"))
        .otherwise(pl.col("birth").cast(pl.Date).dt.strftime(date)),
        hukou_no=pl.col("county_code") + pl.col("hh").cast(pl.String).str.zfill(9),
        relation=relation_text(),
        county_code=pl.col("county_code"),
        residence_type=pl.when(pl.col("urban")).then(pl.lit("URBAN")).otherwise(pl.lit("RURAL")),
        status=pl.col("status"),
        status_date=pl.when(pl.col("active"))
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.col("exit_day").cast(pl.Date).dt.strftime(date)),
    )
