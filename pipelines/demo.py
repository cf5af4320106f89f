"""`make demo`: generate the synthetic county, run the quarterly job on each quarter in order,
say where everything is.

The landing data come from `safetynet generate` (`pipelines/generate/`) at `county` scale
(≈ 50,000 residents of 鼓楼区) for four quarters, in the departments' habits (GB18030 with
Chinese headers, a BOM, Parquet, XLSX, manifests) with ≈ 0.1 % planted bad rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from pipelines import cli, pseudonym
from pipelines.generate import generate
from pipelines.quarters import parse_quarter_list


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--quarters", default="2025Q4..2026Q3")
    parser.add_argument("--scale", default="county")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.monotonic()
    # the demo's synthetic people get the demo key, which says what it is; a real run must be
    # given the province's key
    os.environ.setdefault(pseudonym.ENV, pseudonym.DEMO_KEY)
    out = args.out.resolve()
    landing = out / "landing"
    quarters = parse_quarter_list(args.quarters)
    shutil.rmtree(out, ignore_errors=True)
    g = generate(landing, args.scale, quarters, args.seed)
    print(
        f"generated {args.scale} ({', '.join(map(str, quarters))}) in {g.seconds:.0f} s: "
        f"{g.bytes / 1e6:.0f} MB under {landing}"
    )
    code = cli.run(landing, out, quarters)
    print(
        "\nwhere things are:\n"
        f"  landing data       {landing}/<quarter>/<dept>/<extract>.<ext>\n"
        f"  staging tables     {out}/<quarter>/staging/<dept>/<extract>.parquet\n"
        f"  quarantine         {out}/<quarter>/quarantine/<dept>/<extract>.parquet\n"
        f"  quality tables     {out}/<quarter>/tables/extract_quality.parquet, "
        "quarantine_reasons.parquet\n"
        f"  warnings (analyst) {out}/<quarter>/tables/warnings.parquet, rule_runs.parquet, "
        "data_findings.parquet\n"
        f"  warnings (personal, for routing) {out}/<quarter>/policy/warnings.parquet\n"
        f"  Data Docs          {out}/data_docs/index.html\n"
        f"  Dagster instance   {out}/.dagster  (`make ui` opens it)\n"
        f"demo finished in {time.monotonic() - started:.0f} s"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
