"""Publishing: the quarter's warnings delivered to those who act on them and those who audit.

In:  `<out>/<q>/policy/warnings.parquet` and `<out>/<q>/tables/rule_runs.parquet` (the policy
     stage), the departments' accepted feedback `<out>/<q>/staging/<dept>/feedback.parquet` and
     the quarter's accounting tables (the gate), the latest earlier quarter's
     `tables/warning_lifecycle.parquet`.
Out: `<out>/<q>/routed/<department>/<county>.csv` (UTF-8 with BOM, for Excel),
     `<out>/<q>/tables/warnings.parquet`, `warning_lifecycle.parquet`, `feedback.parquet`,
     `<out>/<q>/policy/routed.parquet` (the routing record), `<out>/warehouse.duckdb` (the analyst
     warehouse) and `<out>/<q>/quality_report.html` (the auditors' page).

Modules:
- `lifecycle` — NEW, RECURRING, ESCALATED, RESOLVED, SUPPRESSED, CARRIED_OVER, with feedback;
- `routed` — the routed files and the analyst tables of the quarter;
- `atomic` — written aside, moved into place at once; recovery after a killed run;
- `warehouse` — every quarter in one DuckDB database with bilingual comments and views;
- `page` — the page kit of both pages: inline style, escaping, tables, SVG charts;
- `report` — the self-contained quality report;
- `whatif_page` — the self-contained page of a reform's comparison (`policy/whatif.py`);
- `stage` — the step the quarterly job runs.
"""
