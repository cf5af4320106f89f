"""The wiring: the quarterly job in Dagster and the `safetynet` command line. It holds no logic
of the stages; each asset calls one stage's `stage` module and turns the result into metadata.

- `resources` — the configuration, read from the environment here and nowhere below;
- `assets` — the gate, policy and publishing assets with their asset checks;
- `results` — the asset keys, and what the policy and publishing steps report (metadata, the
  `every_rule_evaluated` check), wherever they run;
- `spark_submission`, `spark_application` — the cluster path: the policy and publishing steps
  submitted through Dagster Pipes (`SAFETYNET_SPARK_SUBMIT`), and the application `spark-submit`
  runs;
- `schedules`, `sensors` — the quarterly schedule and the landing sensor;
- `instance` — the Dagster instance under `<out>/.dagster` (one run at a time);
- `definitions` — `Definitions` for `workspace.yaml` and `make ui`;
- `cli` — `safetynet run` and `safetynet generate`; `demo` — `make demo`.
"""
