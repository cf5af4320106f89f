"""`province` scale, chunk by chunk: one county a chunk, its rows appended to every extract's file.

The rows of 42 M residents do not fit in memory as Python dicts (the `samples` writers' input),
so at `province` scale the generator builds one county at a time (`province.build` with `chunk`)
and writes each extract column-wise with polars, appending chunk after chunk:

- CSV: the chunk's UTF-8 CSV text, encoded as the department's habit asks (GB18030 for mps,
  a BOM before the first chunk for mca), one header; empty cells are written as nothing;
- Parquet (nhsa settlements): the chunks are gathered and typed column-wise at the end, as
  `samples.typed_column` types them (`core.valuetypes.file_column`: dates as dates, money as
  Decimal(18,2); a column with a value that cannot be typed stays text); manifests are written
  once every file is complete.

What stays unique across chunks: persons and households are numbered on from the previous
chunk (so `hukou_no`, `case_id`, vehicle, property, house and entity ids are unique), identity
numbers under abolished codes take sequence codes from the chunk's own range (see
`province.build`), and sequential event ids (settlements, employment assistance, student aid)
are numbered on across chunks (`renumber`). Bad rows are planted per chunk as `habits` plants
them (≈ 0.1 % of a chunk's extract of 100 rows or more), but only the chosen rows go through
`samples.plant`; the planted rule cases are chosen in, and applied to, the first chunk.

Sizes of the chunks: a Dirichlet draw over the counties for the seed (like the smaller scales'
household counties). The bytes depend only on (seed, quarter), as at the smaller scales.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.core import contracts
from pipelines.core.contracts import Contract
from pipelines.core.layout import Landing
from pipelines.core.quarters import Quarter
from pipelines.core.valuetypes import file_column
from pipelines.generate import extracts, habits, plants, province, samples

# (dept, extract) -> (id column, prefix, digits) of ids numbered 0, 1, … within a quarter
SEQUENTIAL = {
    ("hrss", "employment_assistance"): ("service_id", "EA", 8),
    ("nhsa", "settlements"): ("settlement_id", "JS", 9),
    ("moe", "student_aid"): ("aid_id", "ZZ", 8),
}
_INDEX = "__row"


def chunk_sizes(n: int, counties: list[str], seed: int) -> list[int]:
    """People per county (chunk), summing to `n`."""
    w = np.random.default_rng([seed, 4]).dirichlet(np.full(len(counties), 4.0))
    sizes = np.floor(w * n).astype(np.int64)
    sizes[: n - int(sizes.sum())] += 1
    return [int(s) for s in sizes]


def renumber(frames: dict, q: Quarter, offsets: dict) -> None:
    """Number the sequential ids of this chunk on from the previous chunks' (in place)."""
    for key, (column, prefix, digits) in SEQUENTIAL.items():
        f = frames[key]
        start = offsets.get(key, 0)
        number = pl.int_range(pl.len(), dtype=pl.Int64) + start
        frames[key] = f.with_columns(
            (pl.lit(f"{prefix}{q}-") + number.cast(pl.String).str.zfill(digits)).alias(column)
        )
        offsets[key] = start + f.height


def plant_frame(
    frame: pl.DataFrame,
    contract: Contract,
    quarter: Quarter,
    rng: np.random.Generator,
    candidates: list,
    protected: frozenset[str] = frozenset(),
) -> tuple[pl.DataFrame, Counter]:
    """`habits.plant_bad_rows` on a frame: the same choice of rows and kinds, but only the
    chosen pairs of rows (row i and its neighbour i+1) become dicts for `samples.plant`."""
    n = frame.height
    expected: Counter = Counter()
    if n < habits.MIN_ROWS_FOR_BAD:
        return frame, expected
    k = max(1, round(n * habits.BAD_SHARE))
    even = np.arange(0, n - 1, 2)
    if protected and "id_number" in frame.columns:
        hit = frame["id_number"].is_in(list(protected)).to_numpy()
        free = even[~hit[even] & ~hit[even + 1]]
    else:
        free = even
    at = np.sort(rng.choice(free, size=k, replace=False))
    kinds = rng.integers(0, len(candidates), k)
    index = np.stack([at, at + 1], axis=1).ravel()
    rows = frame[index].to_dicts()
    for j, kind in enumerate(kinds.tolist()):
        pair = rows[2 * j : 2 * j + 2]
        failing = samples.plant(pair, contract, candidates[kind], 0, quarter=quarter)
        for reasons in failing.values():
            expected.update(reasons)
        rows[2 * j : 2 * j + 2] = pair
    patch = pl.DataFrame(rows, schema=frame.schema).with_columns(
        pl.Series(_INDEX, index, dtype=pl.UInt32)
    )
    kept = frame.with_row_index(_INDEX).filter(~pl.col(_INDEX).is_in(pl.Series(index).implode()))
    merged = pl.concat([kept, patch.select(kept.columns)]).sort(_INDEX).drop(_INDEX)
    return merged, expected


def _typed_frame(contract: Contract, frame: pl.DataFrame) -> pl.DataFrame:
    """Column-wise `samples.typed_column` (money as Decimal(18,2)) for the Parquet habit."""
    out = []
    for name in frame.columns:
        held = file_column(frame[name], contract.column(name).value_type, contract.date_formats)
        out.append(frame[name] if held is None else held)
    return pl.DataFrame(out)


class _Sink:
    """One extract's file, appended to chunk by chunk."""

    def __init__(self, landing: Path, contract: Contract, quarter: Quarter, scale: str):
        dept = contract.department
        self.contract = contract
        self.fmt = habits.file_format(dept, contract.extract, scale)
        if self.fmt == "xlsx":
            self.fmt = "csv"
        self.options = habits.write_options(dept, self.fmt)
        self.path = samples.extract_path(landing, contract, self.fmt, quarter=quarter)
        self.rows = 0
        self.parts: list[pl.DataFrame] = []
        self.header = False
        if self.fmt == "csv":
            bom = b"\xef\xbb\xbf" if self.options.get("encoding") == "utf-8-sig" else b""
            self.path.write_bytes(bom)

    def append(self, frame: pl.DataFrame) -> None:
        self.rows += frame.height
        if self.fmt != "csv":
            self.parts.append(frame)
            return
        headers = samples.headers_for(
            self.contract, frame.columns, self.options.get("headers", "canonical")
        )
        text = frame.select(
            pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(h)
            for c, h in zip(frame.columns, headers, strict=True)
        ).write_csv(include_header=not self.header, line_terminator="\n")
        self.header = True
        encoding = "gb18030" if self.options.get("encoding") == "gb18030" else "utf-8"
        with self.path.open("ab") as f:
            f.write(text.encode(encoding))

    def close(self) -> None:
        if self.fmt == "parquet":
            frame = pl.concat(self.parts) if self.parts else None
            if frame is not None:
                _typed_frame(self.contract, frame).write_parquet(self.path)
            self.parts = []


def generate_chunked(
    out: Path, scale: str, quarters: list[Quarter], seed: int, n: int, *, log=None
) -> tuple[dict[str, dict[str, int]], dict[Quarter, list[dict]]]:
    """Write the landing folder of `quarters` county by county; returns rows per extract and
    the planted cases per quarter."""
    every = contracts.extract_contracts()
    counties = province.counties_for(scale)
    sizes = chunk_sizes(n, counties, seed)
    for q in quarters:
        for contract in every:  # a department re-sending a quarter replaces its folder
            samples.remove_folder(Landing(out).folder(q, contract.department))
    sinks = {q: {c.name: _Sink(out, c, q, scale) for c in every} for q in quarters}
    candidates = {q: {c.name: habits._plantable(c, q) for c in every} for q in quarters}
    expected = {q: {c.name: Counter() for c in every} for q in quarters}
    offsets: dict[Quarter, dict] = {q: {} for q in quarters}
    cases: dict[Quarter, list[dict]] = {}
    pid = hh = 0
    chosen: dict[str, str] = {}
    for chunk, (county, size) in enumerate(zip(counties, sizes, strict=True)):
        pop = province.build(scale, seed, size, counties=[county], chunk=chunk, offset=(pid, hh))
        pid += size
        hh = int(pop.people["hh"].max()) + 1
        if chunk == 0:
            chosen = plants.subjects(pop)
        for q in quarters:
            people = province.at(pop, q.end)
            frames = extracts.quarter_extracts(
                people, province.residents(people), q, seed, chunk=chunk
            )
            del people
            renumber(frames, q, offsets[q])
            protected: frozenset[str] = frozenset()
            if chunk == 0:
                subjects = dict(chosen)
                cases[q] = plants.apply(frames, subjects, q, province.at(pop, q.end))
                protected = frozenset(subjects.values())
            for index, contract in enumerate(every):
                rng = np.random.default_rng([seed, 3, q.year, q.q, index, chunk])
                frame, planted = plant_frame(
                    frames.pop((contract.department, contract.extract)),
                    contract,
                    q,
                    rng,
                    candidates[q][contract.name],
                    protected,
                )
                expected[q][contract.name].update(planted)
                sinks[q][contract.name].append(frame)
        if log and (chunk + 1) % 10 == 0:
            log(f"chunk {chunk + 1}/{len(counties)}: {pid:,} people")
    rows: dict[str, dict[str, int]] = {}
    for q in quarters:
        manifests: dict[str, dict[str, int]] = {}
        planted: dict[str, dict[str, dict[str, int]]] = {}
        for contract in every:
            sink = sinks[q][contract.name]
            sink.close()
            if habits.with_manifest(contract.department):
                manifests.setdefault(contract.department, {})[sink.path.name] = sink.rows
            planted.setdefault(contract.department, {})[contract.extract] = dict(
                sorted(expected[q][contract.name].items())
            )
            if log:
                log(f"{q} {contract.name}: {sink.rows:,} rows -> {sink.path.name}")
        for dept, files in manifests.items():
            samples.write_manifest(Landing(out).folder(q, dept), files, department=dept, quarter=q)
        Landing(out).sidecar(q, habits.PLANTED_ERRORS).write_text(
            json.dumps(planted, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        plants.write(out, q, cases.get(q, []))
        rows[str(q)] = {c.name: sinks[q][c.name].rows for c in every}
    return rows, cases
