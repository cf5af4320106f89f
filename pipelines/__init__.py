"""safetynet: quarterly cross-department monitoring of the low-income population.

The data flows one way, a folder per stage (docs/architecture.md):

    landing files ─► gate ─► staging tables ─► policy ─► warnings ─► publish ─► routed files,
                                                                     warehouse, reports

- `core/` — the shared leaves (contracts, quarters, codes, identity numbers, pseudonyms,
  parameters, the output layout);
- `gate/` — every extract read, checked against its contract, validated by Great Expectations,
  accounted for;
- `policy/` — facts and every rule over the staged rows, behind one engine seam;
- `publish/` — lifecycle, routed files, warehouse, quality report, published atomically;
- `orchestration/` — the Dagster definitions and the `safetynet` command line, wiring the stages;
- `generate/` — the synthetic province (`safetynet generate`).
"""
