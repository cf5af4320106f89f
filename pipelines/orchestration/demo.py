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

from pipelines.core import pseudonym
from pipelines.core.layout import Landing, Outputs
from pipelines.core.quarters import parse_quarter_list
from pipelines.generate import generate
from pipelines.orchestration import cli
from pipelines.orchestration.resources import KEY_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default="out/demo")
    parser.add_argument("--quarters", default="2025Q4..2026Q3")
    parser.add_argument("--scale", default="county")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.monotonic()
    # the demo's synthetic people get the demo key, which says what it is; a real run must be
    # given the province's key
    os.environ.setdefault(KEY_ENV, pseudonym.DEMO_KEY)
    out = args.out.resolve()
    landing = Outputs(out).demo_landing
    quarters = parse_quarter_list(args.quarters)
    if out.exists():  # the demo starts from nothing
        shutil.rmtree(out)
    g = generate(landing, args.scale, quarters, args.seed)
    print(
        f"generated {args.scale} ({', '.join(map(str, quarters))}) in {g.seconds:.0f} s: "
        f"{g.bytes / 1e6:.0f} MB under {landing}"
    )
    code = cli.run(landing, out, quarters)
    last = quarters[-1]
    print(where_things_are(landing, out))
    print(analyst_queries(out, str(last)))
    print(f"demo finished in {time.monotonic() - started:.0f} s")
    return code


def where_things_are(landing: Path, out: Path) -> str:
    outputs = Outputs(out)
    q = outputs.quarter("<quarter>")
    placeholders = ("<quarter>", "<dept>", "<extract>", "<ext>")
    return (
        "\nwhere things are:\n"
        f"  landing data       {Landing(landing).extract_file(*placeholders)}\n"
        f"  routed files       {q.routed_file('<department>', '<county>')} "
        "(UTF-8 with BOM, for Excel; personal data: the receiving department only)\n"
        f"  analyst warehouse  {outputs.warehouse}  (no identity numbers or names)\n"
        f"  quality report     {q.report}  (opens offline)\n"
        f"  Data Docs          {outputs.data_docs_index}\n"
        f"  analyst tables     {q.tables}/*.parquet  (warnings, warning_lifecycle, "
        "rule_runs, extract_quality, quarantine_reasons, data_findings, feedback)\n"
        f"  staging tables     {q.staging('<dept>', '<extract>')}\n"
        f"  quarantine         {q.quarantine('<dept>', '<extract>')}\n"
        f"  Dagster instance   {outputs.dagster_home}  (`make ui` opens it)\n"
    )


QUERIES = (
    (
        "warnings by county and category",
        "select county_code, category, warnings, new, escalated "
        "from v_warnings_by_county_category_quarter where quarter = $q order by all",
    ),
    (
        "the rules that raised most",
        "select rule_id, count(*) as warnings, count(*) filter (where status = 'ESCALATED') "
        "as escalated from warnings where quarter = $q group by all order by 2 desc limit 5",
    ),
    (
        "open cases by age",
        "select quarters_open, sum(cases) as cases from v_open_cases_by_age "
        "where quarter = $q group by all order by all",
    ),
    (
        "departments' response rates (routed in an earlier quarter, answered since)",
        "select quarter, routed_to, routed, answered, response_rate "
        "from v_department_response_rates where quarter < $q order by all",
    ),
)


def analyst_queries(out: Path, quarter: str) -> str:
    """A few example analyst queries on the warehouse, with what they return."""
    import duckdb

    path = Outputs(out).warehouse
    if not path.is_file():
        return "(no warehouse: the quarters could not be processed)"
    con = duckdb.connect(str(path), read_only=True)
    lines = [f"example analyst queries ({path}, quarter {quarter}):"]
    try:
        for title, sql in QUERIES:
            shown = sql.replace("$q", f"'{quarter}'")
            lines.append(f"\n-- {title}\n{shown};")
            rel = con.execute(sql, {"q": quarter})
            names = [d[0] for d in rel.description]
            rows = rel.fetchall()
            lines.append("  " + " | ".join(names))
            lines += ["  " + " | ".join(str(v) for v in row) for row in rows[:8]]
            if len(rows) > 8:
                lines.append(f"  … {len(rows) - 8} more rows")
    finally:
        con.close()
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
