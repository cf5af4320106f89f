"""The one reader for every extract format of extracts.md §2.

It detects the encoding of CSV files, hashes every file, and returns every row as text under
canonical column names. It decides nothing about values: that is `checks.py`; nor about the
department's `manifest.json`: that is `manifest.py`, which checks each file read here against
its entry. File-level problems are returned as `FileProblem`s whose messages
name the file, the column or figure, and what was expected, and never carry a value from the
file.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines.core.contracts import Contract
from pipelines.core.layout import EXTRACT_FORMATS
from pipelines.core.valuetypes import VALUE_TYPES

ROW_NUMBER = "row_number"
_READ_CHUNK_BYTES = 1 << 24  # files are read 16 MiB at a time: hashed, decoded, copied


@dataclass(frozen=True)
class FileProblem:
    """A file-level error: the extract fails for the quarter (extracts.md §2)."""

    reason: str  # short code recorded on every quarantined row, e.g. `file.missing_column`
    message: str  # names the file, the column or figure, and what was expected


@dataclass
class ReadFile:
    """One file read as text. `frame` is lazy (a CSV is scanned, never held whole) with a column
    per received header (canonical names for contract columns, the received name for extra
    columns) and `row_number`. `rows` is known once the gate's first pass has counted them."""

    path: Path
    file_format: str
    sha256: str | None = None
    encoding: str | None = None
    frame: pl.LazyFrame | None = None
    rows: int = 0
    received_headers: dict[str, str] = field(default_factory=dict)  # frame column -> header
    extra_columns: list[str] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    temp_file: Path | None = None  # a GB18030 file transcoded to UTF-8, removed by `close`
    plain_ascii: bool = False  # a CSV of ASCII only: UTF-8 and GB18030 alike
    renames: dict[str, str] = field(default_factory=dict)
    headers: list[str] = field(default_factory=list)

    def read_tolerant(self, department: str) -> None:
        """Replace a CSV scan that polars cannot parse (a row with more fields than the header)
        by the slow tolerant reader, which keeps every row and names the first bad one."""
        source = self.temp_file or self.path
        where = f"{department}/{self.path.name}"
        frame = _read_csv_tolerant(source, self.headers, self, where)
        self.frame = _numbered(frame.lazy().rename(self.renames))

    def close(self) -> None:
        if self.temp_file is not None:
            self.temp_file.unlink(missing_ok=True)
            self.temp_file = None


def read_file(
    path: Path, contract: Contract, department: str, landing: Path | None = None
) -> ReadFile:
    """Read any allowed format as text and map its headers onto the contract. A folder where
    the file should be, or a link to a file outside `landing`, is not read."""
    fmt = EXTRACT_FORMATS[path.suffix.lower()]
    read = ReadFile(path, fmt)
    where = f"{department}/{path.name}"
    refused = _not_a_landed_file(path, landing, where)
    if refused is not None:
        read.problems.append(refused)
        return read
    # Nothing is parsed yet for a CSV: a file that polars cannot parse shows up in the gate's
    # first pass, which then falls back to `read_tolerant`.
    date_cells: set[int] = set()  # columns holding typed date cells
    try:
        if fmt == "csv":
            headers, frame = _read_csv(path, read, where)
        elif fmt == "parquet":
            read.sha256 = sha256_of(path)
            headers, frame, date_cells = _read_parquet(path)
        else:
            read.sha256 = sha256_of(path)
            headers, frame, date_cells = _read_xlsx(path, where)
    except _Unreadable as e:
        read.problems.append(e.problem)
        return read
    except Exception as e:  # a broken file must fail its extract, never the quarter
        read.problems.append(
            FileProblem(
                "file.unreadable",
                f"{where}: cannot be read as {fmt.upper()} ({type(e).__name__}): a damaged "
                "or cut-short file? It must be sent again",
            )
        )
        return read
    if date_cells:
        frame = _months_from_date_cells(frame, headers, date_cells, contract)
    _map_headers(read, headers, frame.lazy(), contract, where)
    if fmt == "parquet":
        read.problems.extend(_parquet_types(path, headers, read.renames, contract, where))
    return read


def _kind_of_type(dtype: pl.DataType) -> str:
    if dtype == pl.String:
        return "text"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, pl.Decimal):
        return "decimal"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return "date"
    return str(dtype)


def _parquet_types(
    path: Path, headers: list[str], renames: dict[str, str], contract: Contract, where: str
) -> list[FileProblem]:
    schema = pl.read_parquet_schema(path)
    found = []
    for i, header in enumerate(headers):
        name = renames.get(f"__c{i}")
        if name not in {c.name for c in contract.columns}:
            continue
        kind = _kind_of_type(schema[header])
        allowed = VALUE_TYPES[contract.column(name).value_type].parquet_kinds
        if kind not in allowed:
            found.append(
                FileProblem(
                    "file.column_type",
                    f"{where}: column {name} is {schema[header]} in the file's schema; a "
                    f"{contract.column(name).value_type} column arrives as "
                    f"{' or '.join(sorted(allowed))}",
                )
            )
    return found


def _not_a_landed_file(path: Path, landing: Path | None, where: str) -> FileProblem | None:
    if path.is_dir():
        return FileProblem(
            "file.unreadable",
            f"{where}: is a folder, not a file; expected the extract as one .csv, .parquet or "
            ".xlsx file",
        )
    if landing is not None and path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(Path(landing).resolve()):
            return FileProblem(
                "file.unreadable",
                f"{where}: is a link to a file outside the landing folder; not read (a landing "
                "folder holds what the departments sent: the file itself)",
            )
    return None


def _months_from_date_cells(
    frame: pl.DataFrame, headers: list[str], date_cells: set[int], contract: Contract
) -> pl.DataFrame:
    """A month column sent as date cells holds the month of its first day: Excel turns a typed
    `2026-07` into the date 2026-07-01, and a typed month is a date on the first. Checked by the
    value it holds (extracts.md §2), that is the month `2026-07`; any other day stays a date,
    which is not a month."""
    accepted = contract.header_map()
    months = []
    for i in sorted(date_cells):
        canonical = accepted.get(headers[i].replace("\ufeff", "").strip())
        if canonical and contract.column(canonical).value_type == "month":
            months.append(pl.col(f"__c{i}").str.replace(r"^([0-9]{4}-[0-9]{2})-01$", "${1}"))
    return frame.with_columns(months) if months else frame


class _Unreadable(Exception):
    def __init__(self, problem: FileProblem):
        super().__init__(problem.message)
        self.problem = problem


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_READ_CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


UTF8_EVIDENCE = 32  # continuation bytes of valid multi-byte UTF-8 (≈ 11–16 characters)
_LAST_LINE_BYTES = 1 << 16  # the end of a CSV kept to read its last line: enough for any line


@dataclass
class _CsvByteScan:
    """What the one pass over a CSV's bytes finds besides its encoding and hash: where its first
    NUL byte is, how many double quotes it has (an even number in any well-formed CSV, in UTF-8
    and GB18030 alike: neither uses the byte 0x22 inside a character), and how it ends."""

    nul_at: int | None = None
    quotes: int = 0
    tail: bytes = b""  # the last bytes, for the last line
    multibyte: int = 0  # bytes of multi-byte UTF-8 characters beyond the first: 0 for ASCII


def detect_encoding(path: Path) -> tuple[str, str, _CsvByteScan]:
    """(encoding, sha256, what else the one pass saw: `_CsvByteScan`). UTF-8 with BOM by its mark;
    else strict UTF-8 over the whole file (hashed in the same pass); else GB18030 (a superset
    of GBK, checked strictly when the file is converted). Anything else is undecodable: an
    encoding is never guessed.

    A file that decodes as UTF-8, Chinese characters included, up to one bad byte is a damaged
    UTF-8 file, not a GB18030 one: GB18030 decodes almost any byte pair, so falling back to it
    would turn the damage into silently wrong text. Text in GBK/GB18030 almost never forms even
    a few valid multi-byte UTF-8 characters in a row, so a dozen of them decide (`UTF8_EVIDENCE`).
    """
    h = hashlib.sha256()
    seen = _CsvByteScan()
    utf8 = codecs.getincrementaldecoder("utf-8")("strict")
    utf8_ok, offset, bad_at, evidence = True, 0, 0, 0
    before = last = b""
    with path.open("rb") as f:
        head = f.read(3)
        bom = head == codecs.BOM_UTF8
        if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            raise _UndecodableError(0, sha256_of(path), "UTF-16, by its byte-order mark")
        f.seek(0)
        while chunk := f.read(_READ_CHUNK_BYTES):
            h.update(chunk)
            if seen.nul_at is None and (nul := chunk.find(b"\0")) >= 0:
                seen.nul_at = offset + nul
            seen.quotes += chunk.count(b'"')
            before, last = last, chunk
            if utf8_ok:
                try:
                    good = len(chunk)
                    text = utf8.decode(chunk)
                except UnicodeDecodeError as e:
                    utf8_ok, bad_at, good = False, offset + e.start, e.start
                    text = chunk[:good].decode("utf-8", errors="ignore")
                # bytes beyond one per character: ≥ 1 for every multi-byte character
                evidence += max(0, good - len(text))
            offset += len(chunk)
    if utf8_ok:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok, bad_at = False, offset
    seen.multibyte = evidence
    seen.tail = (before + last)[-_LAST_LINE_BYTES:]  # the last line, even across two chunks
    if utf8_ok:
        return ("utf-8-sig" if bom else "utf-8"), h.hexdigest(), seen
    if not bom and evidence < UTF8_EVIDENCE:
        # GB18030 is checked strictly by `_transcode`, in the one pass that converts the file
        return "gb18030", h.hexdigest(), seen
    raise _UndecodableError(bad_at, h.hexdigest())


class _UndecodableError(Exception):
    def __init__(self, offset: int, sha: str, found: str | None = None):
        self.offset, self.sha, self.found = offset, sha, found


def _transcode(path: Path, encoding: str, sha: str) -> Path:
    """Stream a GB18030 file into a temporary UTF-8 file (polars reads UTF-8 only), decoding
    strictly: a byte sequence that is not GB18030 either makes the file undecodable."""
    fd, name = tempfile.mkstemp(suffix=".csv", prefix="safetynet-")
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out, path.open("rb") as src:
            while chunk := src.read(_READ_CHUNK_BYTES):
                out.write(decoder.decode(chunk))
                offset += len(chunk)
            out.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as e:
        Path(name).unlink(missing_ok=True)
        raise _UndecodableError(offset + e.start, sha) from None
    return Path(name)


def _undecodable(where: str, e: _UndecodableError) -> FileProblem:
    found = f"encoded {e.found}" if e.found else f"invalid byte at offset {e.offset:,}"
    return FileProblem(
        "file.undecodable",
        f"{where}: neither UTF-8 nor GB18030 ({found}); "
        "expected UTF-8, UTF-8 with BOM or GB18030/GBK",
    )


def _read_csv(path: Path, read: ReadFile, where: str) -> tuple[list[str], pl.LazyFrame]:
    try:
        encoding, read.sha256, seen = detect_encoding(path)
    except _UndecodableError as e:
        read.sha256 = e.sha
        raise _Unreadable(_undecodable(where, e)) from None
    source = path
    if encoding == "gb18030":
        try:
            source = read.temp_file = _transcode(path, encoding, read.sha256)
        except _UndecodableError as e:
            raise _Unreadable(_undecodable(where, e)) from None
    read.encoding = encoding
    read.plain_ascii = encoding == "utf-8" and seen.multibyte == 0
    with source.open("r", encoding="utf-8-sig", newline="") as f:
        headers = next(csv.reader(f), None)
    if not headers:
        raise _Unreadable(FileProblem("file.unreadable", f"{where}: no header row"))
    read.problems.extend(_broken_text(path, source, seen, len(headers), where))
    if seen.quotes % 2:  # a quoted field swallows the rest of the file: read line by line
        return headers, _read_csv_tolerant(source, headers, read, where, quoting=csv.QUOTE_NONE)
    frame = pl.scan_csv(
        source,
        has_header=True,
        new_columns=[f"__c{i}" for i in range(len(headers))],
        infer_schema=False,
        encoding="utf8",
        quote_char='"',
    )
    # Like an empty Excel row, a line without a single value (the blank line many exports end
    # with) is not a data row: it would otherwise be counted, quarantined and fail the manifest.
    # The filter reads every column, so every pass over the scan parses whole rows and a row
    # with too many fields is found by the first pass (then `read_tolerant` takes over).
    return headers, frame.filter(~pl.all_horizontal(pl.all().is_null()))


def _broken_text(
    path: Path, source: Path, seen: _CsvByteScan, width: int, where: str
) -> list[FileProblem]:
    """File-level problems of a CSV's text that a CSV parser reads past: a NUL byte, a double
    quote never closed, a last line cut short. Lines are counted in the file as sent."""
    found = []
    if seen.nul_at is not None:
        found.append(
            FileProblem(
                "file.nul_bytes",
                f"{where}: a NUL byte at offset {seen.nul_at:,} (line "
                f"{_line_at(path, seen.nul_at):,}); a text export has none: a damaged copy?",
            )
        )
    ends = seen.tail.endswith((b"\n", b"\r"))
    if seen.quotes % 2:
        found.append(
            FileProblem(
                "file.unbalanced_quote",
                f"{where}: the double quote opened on line {_unclosed_quote_line(source):,} is "
                "never closed, so its field would run on to the end of the file"
                + ("" if ends else " (the file also ends without a line end: cut in transit?)")
                + "; every line is read as it stands",
            )
        )
    elif not ends and seen.tail:
        last = seen.tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
        fields = len(next(csv.reader([last]), []))
        if 0 < fields < width:
            lines = _line_at(path, path.stat().st_size)
            found.append(
                FileProblem(
                    "file.truncated",
                    f"{where}: the file ends inside line {lines:,} ({fields} of {width} fields, "
                    "and no line end): cut in transit? It must be sent again",
                )
            )
    return found


def _line_at(path: Path, offset: int) -> int:
    """The line (1 = the header) holding byte `offset` of the file as sent."""
    newlines = 0
    with path.open("rb") as f:
        left = offset
        while left > 0 and (chunk := f.read(min(_READ_CHUNK_BYTES, left))):
            newlines += chunk.count(b"\n")
            left -= len(chunk)
    return newlines + 1


def _unclosed_quote_line(source: Path) -> int:
    """The line on which the double quote that is never closed opens."""
    inside, opened = False, 0
    with source.open("rb") as f:
        for n, line in enumerate(f, start=1):
            if line.count(b'"') % 2:
                inside = not inside
                opened = n if inside else opened
    return opened


def _read_csv_tolerant(
    source: Path,
    headers: list[str],
    read: ReadFile,
    where: str,
    quoting: int = csv.QUOTE_MINIMAL,
) -> pl.DataFrame:
    """The slow path for a malformed CSV: keep every row that can be read (so the accounting
    loses nothing) and fail the file naming the first row with more fields than the header.
    A row with fewer fields reads its missing fields as empty, as the fast path does (Excel
    drops trailing empty cells): a missing required value quarantines the row on its own."""
    rows: list[list[str | None]] = []
    first_bad: tuple[int, int] | None = None
    width = len(headers)
    with source.open("r", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, quoting=quoting)
        next(reader, None)
        for n, row in enumerate(reader, start=1):
            if not any(row):
                continue  # no value at all: not a data row (see _read_csv)
            if len(row) > width and first_bad is None:
                first_bad = (n, len(row))
            rows.append((row + [None] * width)[:width])
    if first_bad:
        read.problems.append(
            FileProblem(
                "file.unreadable",
                f"{where}: data row {first_bad[0]:,} has {first_bad[1]} fields, "
                f"the header has {width}",
            )
        )
    columns = [f"__c{i}" for i in range(width)]
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String), orient="row")


def _read_parquet(path: Path) -> tuple[list[str], pl.DataFrame, set[int]]:
    frame = pl.read_parquet(path)
    headers = list(frame.columns)
    dates = {
        i
        for i, dtype in enumerate(frame.dtypes)
        if dtype == pl.Date or isinstance(dtype, pl.Datetime)
    }
    frame = frame.select([_as_text(frame[c]).alias(f"__c{i}") for i, c in enumerate(frame.columns)])
    return headers, frame, dates


def _as_text(s: pl.Series) -> pl.Series:
    """A typed cell as the text it stands for (extracts.md §2: checked by the value it holds)."""
    dtype = s.dtype
    if dtype == pl.String:
        return s
    if dtype == pl.Date:
        return s.dt.strftime("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):
        midnight = s.dt.time() == dt.time(0)
        return (
            pl.select(
                pl.when(midnight)
                .then(s.dt.strftime("%Y-%m-%d"))
                .otherwise(s.dt.strftime("%Y-%m-%d %H:%M:%S"))
            )
            .to_series()
            .alias(s.name)
        )
    if dtype.is_float():
        return pl.Series(s.name, [_cell_text(v) for v in s.to_list()], dtype=pl.String)
    if isinstance(dtype, pl.Decimal):
        # by the value it holds: a DECIMAL(18,4) 1234.5000 is 1234.5, not four decimals
        return s.cast(pl.String).str.replace(r"(\.[0-9]*?)0+$", "${1}").str.strip_suffix(".")
    if dtype == pl.Boolean:
        return s.cast(pl.String).str.to_lowercase()
    return s.cast(pl.String)


def _cell_text(v: object) -> str | None:
    """One typed cell (from XLSX or a float column) as text."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != v:  # NaN
            return None
        if v.is_integer() and abs(v) < 1e18:
            return str(int(v))
        # a binary float holds an approximation: read it at the 15 significant digits Excel
        # shows, so a computed 1234.5600000000002 is 1234.56 (and 12.345 stays 12.345)
        return format(decimal.Decimal(format(v, ".15g")), "f")
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d") if v.time() == dt.time(0) else v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return format(v.normalize(), "f")
    return str(v)


# What a workbook may hold once unpacked. A million-row sheet of ten columns is ≈ 0.5 GB of XML;
# a "zip bomb" declares many gigabytes in a few kilobytes and would fill memory or disk.
MAX_XLSX_UNPACKED = 2 << 30


def _read_xlsx(path: Path, where: str) -> tuple[list[str], pl.DataFrame, set[int]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(path) as z:
            unpacked = sum(i.file_size for i in z.infolist())
    except zipfile.BadZipFile:
        raise _Unreadable(
            FileProblem(
                "file.unreadable",
                f"{where}: is not an Excel workbook (an .xlsx file is a zip archive; this one "
                "is not); expected the extract saved as .xlsx, .csv or .parquet",
            )
        ) from None
    if unpacked > MAX_XLSX_UNPACKED:
        raise _Unreadable(
            FileProblem(
                "file.unreadable",
                f"{where}: unpacks to {unpacked / (1 << 30):,.1f} GiB (from "
                f"{path.stat().st_size / (1 << 20):,.1f} MiB), more than the "
                f"{MAX_XLSX_UNPACKED >> 30} GiB a workbook may hold; not opened",
            )
        )
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]  # extracts.md §2: the first sheet
        rows = ws.iter_rows(values_only=True)
        header_row = next(rows, None)
        if header_row is None:
            raise _Unreadable(FileProblem("file.unreadable", f"{where}: empty first sheet"))
        headers = ["" if h is None else str(h) for h in header_row]
        while headers and headers[-1] == "":
            headers.pop()
        width = len(headers)
        data = []
        dates: set[int] = set()
        for row in rows:
            dates.update(i for i, v in enumerate(row[:width]) if isinstance(v, dt.date))
            cells = [_cell_text(v) for v in row[:width]]
            if all(c is None or c == "" for c in cells):
                continue  # Excel keeps formatted empty rows; they carry no data
            data.append(cells + [None] * (width - len(cells)))
    finally:
        wb.close()
    columns = [f"__c{i}" for i in range(width)]
    frame = pl.DataFrame(data, schema=dict.fromkeys(columns, pl.String), orient="row")
    return headers, frame, dates


def _map_headers(
    read: ReadFile, headers: list[str], frame: pl.LazyFrame, contract: Contract, where: str
) -> None:
    read.headers = headers
    accepted = contract.header_map()
    renames: dict[str, str] = {}
    seen: dict[str, str] = {}
    for i, raw in enumerate(headers):
        header = raw.replace("\ufeff", "").strip()
        canonical = accepted.get(header)
        if canonical is None:
            name = header or f"column_{i + 1}"
            while name in renames.values() or name in accepted.values() or name == ROW_NUMBER:
                name += "_extra"
            read.extra_columns.append(header or f"(unnamed column {i + 1})")
            renames[f"__c{i}"] = name
            read.received_headers[name] = raw
        elif canonical in seen:
            read.problems.append(
                FileProblem(
                    "file.duplicate_column",
                    f"{where}: column {canonical} appears twice (headers {seen[canonical]!r} and "
                    f"{header!r}); expected it once",
                )
            )
            renames[f"__c{i}"] = f"{canonical}__dup{i}"
            read.received_headers[f"{canonical}__dup{i}"] = raw
        else:
            seen[canonical] = header
            renames[f"__c{i}"] = canonical
            read.received_headers[canonical] = raw
    missing = [c.name for c in contract.columns if c.name not in seen]
    for name in missing:
        col = contract.column(name)
        aliases = " or ".join([name, *col.aliases])
        read.problems.append(
            FileProblem(
                "file.missing_column",
                f"{where}: column {name} is missing (expected a header {aliases}; nullable "
                "columns must be present too)",
            )
        )
    read.renames = renames
    read.frame = _numbered(frame.rename(renames))


def _numbered(frame: pl.LazyFrame) -> pl.LazyFrame:
    """`row_number`: the 1-based data row in the file (outputs.md §3)."""
    return frame.with_row_index(ROW_NUMBER, offset=1).with_columns(
        pl.col(ROW_NUMBER).cast(pl.Int64)
    )
