"""The shared core: the leaves every stage reads and none of them owns.

- `contracts` — the data contracts of `data_contracts/` as plain objects;
- `valuetypes` — the contracts' value types: the text each accepts, its typed and staged value;
- `quarters` — quarters as the spec writes them (`2026Q3`) and their dates;
- `gbt2260` — GB/T 2260 administrative division codes with their years in force;
- `idnumbers` — identity numbers (GB 11643), vectorised, and masking;
- `pseudonym` — keyed pseudonyms (`person_key`, `warning_key`);
- `parameters` — the policy parameters of `rules/parameters/`, validated when loaded;
- `departments` — the departments, the routing codes and the core extracts;
- `cells` — values written as the text departments send them in (identity numbers, yuan, dates);
- `layout` — every path under the landing folder and `<out>/`;
- `resources` — where the packaged `data_contracts/`, `rules/` and `sql/` are (and the
  lifecycle's SQL, publishing's);
- `faults` — the crash points a test kills a run at.

Nothing here imports a stage (`gate`, `policy`, `publish`) or Dagster.
"""
