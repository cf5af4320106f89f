"""The policy stage: derived facts and every rule over what the gate accepted (policy.md).

In:  the gate's results `<out>/<q>/gate/*.json` and staging tables
     `<out>/<q>/staging/<dept>/<extract>.parquet` of the quarter and of the three before it (the
     window W); the parameters (`rules/parameters/`), the fact models (`sql/`) and the rule
     catalogue (`rules/catalogue/`).
Out: `<out>/<q>/policy/warnings.parquet` (the raised warnings with identity numbers and names:
     personal, read by publishing only), `<out>/<q>/tables/rule_runs.parquet` and
     `data_findings.parquet`; `<out>/<q>/policy/facts/` (the fact models and raised warnings as
     evaluated, personal, read by what-if only); a reform's comparison in `<out>/whatif/<name>/`.

Modules:
- `engine` — the engine seam: what the stage asks of a SQL engine; DuckDB behind it;
- `portable` — the portable SQL subset the texts are written in, translated for Spark (sqlglot);
- `spark` — the Spark engine behind the same seam;
- `facts` — the staging tables loaded into the engine, the parameters bound, the fact models;
- `catalogue` — the rules as data, their declarations checked against their SQL;
- `evaluate` — the one evaluator: every rule in order, NOT_EVALUATED with its reason, warnings
  with evidence, `rule_runs`, data findings;
- `stage` — the step the quarterly job runs;
- `saved` — the quarter's facts as evaluated, saved and checked before what-if uses them;
- `lineage` — which fact model columns and rules a change of parameters reaches;
- `whatif` — a policy reform evaluated on a published quarter against its baseline.
"""
