"""`make demo`: write a demo landing quarter, run the quarterly job on it, say where things are.

At this stage the landing data are sample extracts built from the data contracts
(`pipelines/samples.py`): valid rows for every extract, a few planted bad rows, the departments'
habits (GB18030 with Chinese headers, a BOM, Parquet, XLSX, a manifest) and one broken
secondary extract, so the reconciliation shows every status. The synthetic province generator
replaces them with the next issue.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from pipelines import cli, samples
from pipelines.contracts import extract_contracts
from pipelines.quarters import Quarter, parse_quarter_list

ROWS = 400
# how each department sends (extracts.md §2: most UTF-8 CSV, older systems GB18030 under
# Chinese headers, some with a BOM, smaller departments Excel)
HABITS = {
    "mps": {"fmt": "csv", "encoding": "gb18030", "headers": "alias"},
    "hrss": {"fmt": "csv", "encoding": "utf-8-sig"},
    "nhsa": {"fmt": "parquet"},
    "cdpf": {"fmt": "xlsx"},
}
WITH_MANIFEST = {"nhsa", "moe"}
PLANTED = {  # a few bad rows, well under the 5 % limit
    ("mps", "residents"): ["gender.disagrees_with_id", "id_number.check_character"],
    ("mca", "assistance_roster"): ["county_code.invalid_county"],
    ("nhsa", "settlements"): ["total_cost.sum_mismatch"],
    ("hrss", "employment"): ["ended_on.before_started_on", "duplicate_key"],
}
BROKEN = ("mem", "disaster_victims")  # sent without its relief_amount column


def write_landing(landing: Path, quarter: Quarter, seed: int = 1) -> None:
    for contract in extract_contracts():
        key = (contract.department, contract.extract)
        rows = samples.make_rows(contract, ROWS, quarter=quarter, seed=seed)
        for i, reason in enumerate(PLANTED.get(key, [])):
            samples.plant(rows, contract, reason, 10 + 37 * i, quarter=quarter)
        options = dict(HABITS.get(contract.department, {"fmt": "csv"}))
        if key == BROKEN:
            options["drop"] = ["relief_amount"]
        samples.write_extract(
            landing,
            contract,
            rows,
            quarter=quarter,
            manifest=contract.department in WITH_MANIFEST,
            **options,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--quarters", default="2026Q3")
    args = parser.parse_args(argv)
    started = time.monotonic()
    out = args.out.resolve()
    landing = out / "landing"
    quarters = parse_quarter_list(args.quarters)
    shutil.rmtree(out, ignore_errors=True)
    for q in quarters:
        write_landing(landing, q)
    print(f"demo landing data written to {landing} ({', '.join(map(str, quarters))})")
    code = cli.run(landing, out, quarters)
    print(
        "\nwhere things are:\n"
        f"  staging tables     {out}/<quarter>/staging/<dept>/<extract>.parquet\n"
        f"  quarantine         {out}/<quarter>/quarantine/<dept>/<extract>.parquet\n"
        f"  quality tables     {out}/<quarter>/tables/extract_quality.parquet, "
        "quarantine_reasons.parquet\n"
        f"  Data Docs          {out}/data_docs/index.html\n"
        f"  Dagster instance   {out}/.dagster  (make ui opens it)\n"
        f"demo finished in {time.monotonic() - started:.0f} s"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
