"""The gate: every department extract read, checked against its data contract, validated by
Great Expectations and accounted for (extracts.md §2–4).

In:  `<landing>/<quarter>/<dept>/<extract>.<csv|parquet|xlsx>` and `manifest.json` (extracts.md
     §1); the data contracts (`data_contracts/`); for feedback, publishing's routing record of
     earlier quarters (`<out>/<quarter>/policy/routed.parquet`).
Out: per extract `<out>/<q>/staging/<dept>/<extract>.parquet` (accepted rows, typed),
     `<out>/<q>/quarantine/<dept>/<extract>.parquet` (rejected rows as received, with reasons) and
     `<out>/<q>/gate/<dept>.<extract>.json` (its accounting); per quarter
     `<out>/<q>/tables/extract_quality.parquet`, `quarantine_reasons.parquet`; the Great
     Expectations store `<out>/gx/` and Data Docs `<out>/data_docs/`.

Modules, in the order data meets them:
- `reader` — the one reader for every format; encodings;
- `manifest` — a department's `manifest.json`, and each file read checked against it;
- `values` — a received cell as its typed value, per value type;
- `kinds` — each kind of check as one registered object (row check, expectation, plant);
- `checks` — a contract compiled to checks and evaluated over a frame; rows compared settled;
- `extract` — one extract through the gate: staging, quarantine, accounting;
- `expectations` — the same checks as a Great Expectations suite, validated batch by batch;
- `custom_expectations` — the checks GE has no equivalent of, as GE expectations whose metrics
  run the gate's own Polars code;
- `datadocs` — GE's Data Docs built quarter by quarter, made to open with no network (vendored
  scripts and styles);
- `gx_patches`, `gx_store`, `gx_deferred` — where Great Expectations is worked around, in one
  room: `gx_patches` lists every workaround replacing GE code, with the GE version it was
  written against, and holds
  the patches of GE's internals (one context manager); `gx_store` keeps GE's project, suites and
  results without GE's slow steps; `gx_deferred` loads what GE imports and no contract uses on
  first use;
- `accounting` — the results of the quarter's extracts as tables, and the reconciliation;
- `arrival` — whether a quarter's landing folder has arrived (for the landing sensor);
- `stage` — the steps the quarterly job runs (one extract, the feedback, the accounting).
"""

from pipelines.gate.gx_deferred import defer_unused

# before Great Expectations is imported by any module of the gate
defer_unused()
