"""The exact outputs of a fixed input, as digests (the issue "Faster than a plain script": every
speed-up keeps the outputs byte-identical).

The input is the generated `county` for two quarters (seed 1; the second with the departments'
answers to the first's warnings), run through the quarterly job as `safetynet run` runs it.
The digests are of the routed files (every byte, by path) and of the warehouse's rows (every
table, rows sorted), per quarter for the files. `tests/digests/county.json` holds the digests
the outputs had when they were last known right; a change that alters a warning, a status or a
count changes a digest, and the test says which.

`python -m tests.digest` lists the outputs whose digest changed, the new ones and those gone;
to record new digests after a change that is meant to alter the outputs (an issue asks for it):
    python -m tests.digest --write
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import duckdb

from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter

SCALE, SEED = "county", 1
QUARTERS = [Quarter(2026, 2), Quarter(2026, 3)]
STORED = Path(__file__).parent / "digests" / f"{SCALE}.json"


def run(root: Path) -> Path:
    """The fixed input generated under `root` and run; the output folder."""
    from pipelines.generate import generate
    from pipelines.orchestration import cli

    landing, out = root / "landing", root / "out"
    generate(landing, SCALE, QUARTERS, seed=SEED)
    if cli.run(landing, out, QUARTERS, echo=lambda *_: None) != 0:
        raise RuntimeError("the quarterly job failed on the fixed input")
    return out


def _sha(chunks) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def digests(out: Path) -> dict[str, str]:
    """`<quarter>/routed/<dept>/<file>` -> the file's SHA-256, and `warehouse/<table>` -> the
    SHA-256 of its rows (each row's repr, sorted) and the row count."""
    found: dict[str, str] = {}
    outputs = Outputs(out)
    for q in QUARTERS:
        folder = outputs.quarter(q)
        for path in sorted(folder.routed_files()):
            found[f"{q}/{path.relative_to(folder.root).as_posix()}"] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    with duckdb.connect(str(outputs.warehouse), read_only=True) as con:
        tables = sorted(t for (t,) in con.sql("select table_name from duckdb_tables()").fetchall())
        for table in tables:
            rows = sorted(repr(r) for r in con.sql(f'select * from "{table}"').fetchall())
            found[f"warehouse/{table}"] = f"{len(rows)} rows {_sha(r.encode() for r in rows)}"
    return found


def stored() -> dict[str, str]:
    return json.loads(STORED.read_text(encoding="utf-8"))


def compare(found: dict[str, str], recorded: dict[str, str]) -> dict[str, list[str]]:
    """The outputs whose digest `changed`, the `new` ones and those `gone`, each sorted."""
    return {
        "changed": sorted(n for n in recorded.keys() & found.keys() if found[n] != recorded[n]),
        "new": sorted(found.keys() - recorded.keys()),
        "gone": sorted(recorded.keys() - found.keys()),
    }


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"record the digests in {STORED}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        found = digests(run(Path(tmp)))
    differ = compare(found, stored() if STORED.is_file() else {})
    for what, names in differ.items():
        print(f"{what}: {len(names)}", *(f"  {n}" for n in names), sep="\n")
    if args.write:
        STORED.parent.mkdir(parents=True, exist_ok=True)
        STORED.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {len(found)} digests to {STORED}")
    return 0


if __name__ == "__main__":
    import os

    from pipelines.core import pseudonym

    # the demo key, whatever the shell has: the test runs with it (tests/conftest.py)
    os.environ["SAFETYNET_PSEUDONYM_KEY"] = pseudonym.DEMO_KEY
    raise SystemExit(main())
