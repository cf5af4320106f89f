"""Spark gives what DuckDB gives (the issue "Past one machine"): the same generated quarters
through both engines raise the same warnings — every key, rule, subject, status, evidence value
and NOT_EVALUATED row — the same lifecycle, byte-identical routed files and the same warehouse
rows; and each construct where the engines could differ (month ends, 29 February, impossible
dates, NULLs, empty groups, Chinese text order, money at its largest, JSON numbers) gives the
same values on both.

One Spark session (local, `spark.LOCAL_CONFIG`) serves the whole module, and no other module
starts one. Needs Java 17 (`.ci/run` checks for it)."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest
import sqlglot

from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter, quarter_range
from pipelines.core.resources import LIFECYCLE_SQL
from pipelines.generate import generate
from pipelines.orchestration.resources import PolicyEngine, pyspark_resource
from pipelines.policy import facts
from pipelines.policy import stage as policy_stage
from pipelines.policy.engine import DuckDBEngine
from pipelines.policy.evaluate import RULE_RUN_SCHEMA
from pipelines.publish import lifecycle
from pipelines.publish import stage as publish_stage
from tests.gating import gate_quarter

# two quarters: the second has the departments' answers to the first's warnings, a withdrawn
# extract (CARRIED_OVER) and warnings raised again (RECURRING); ESCALATED needs a third quarter
# open, which the random history below gives both engines (each quarter on Spark is 15-30 s of
# fixed cost at this size, and the module keeps under 90 s)
QUARTERS = [Quarter.parse(q) for q in quarter_range("2025Q4", "2026Q1")]
WITHDRAWN = (QUARTERS[-1], "moe", "student_aid")  # not sent: PNI_EDUCATION_AID NOT_EVALUATED


@pytest.fixture(scope="module")
def spark():
    from pipelines.policy.spark import SparkEngine

    engine = SparkEngine()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def duck():
    engine = DuckDBEngine(threads=1)
    yield engine
    engine.close()


# ---- the same quarters through both engines ---------------------------------------------------


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory, spark) -> dict[str, Path]:
    """The `test`-scale county for two quarters (with the departments' feedback, and one
    extract withdrawn from the last), gated, then the policy stage and publishing on each
    engine, quarter by quarter, into an output folder per engine."""
    from pipelines.core import pseudonym

    key = pseudonym.DEMO_KEY.encode()
    root = tmp_path_factory.mktemp("engines")
    landing = root / "landing"
    generate(landing, "test", QUARTERS, seed=3)
    q, dept, extract = WITHDRAWN
    for path in (landing / str(q) / dept).glob(f"{extract}.*"):
        path.unlink()
    manifest = landing / str(q) / dept / "manifest.json"
    if manifest.is_file():
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        doc["files"] = {k: v for k, v in doc["files"].items() if not k.startswith(extract)}
        manifest.write_text(json.dumps(doc), encoding="utf-8")
    outs = {}
    for engine in ("duckdb", "spark"):
        out = root / engine
        session = spark.spark if engine == "spark" else None
        for quarter in QUARTERS:
            gate_quarter(landing, out, quarter)
            policy_stage.evaluate_quarter(out, quarter, key, engine=engine, spark_session=session)
            publish_stage.publish_quarter(out, quarter, key, engine=engine, spark_session=session)
        outs[engine] = out
    return outs


def _table(out: Path, quarter: Quarter, name: str) -> pl.DataFrame:
    return pl.read_parquet(Outputs(out).quarter(quarter).table(name))


@pytest.mark.parametrize("quarter", QUARTERS, ids=str)
def test_both_engines_raise_the_same_warnings_with_the_same_evidence(both_runs, quarter):
    d = pl.read_parquet(Outputs(both_runs["duckdb"]).quarter(quarter).personal_warnings)
    s = pl.read_parquet(Outputs(both_runs["spark"]).quarter(quarter).personal_warnings)
    assert d.height > 50
    assert d.columns == s.columns and d.schema == s.schema
    assert d.to_dicts() == s.to_dicts()  # in order, every column: keys, evidence text, reasons
    assert d["evidence"].str.contains('"window_quarters"').any()


@pytest.mark.parametrize("quarter", QUARTERS, ids=str)
def test_both_engines_give_the_same_rule_runs_and_not_evaluated_rows(both_runs, quarter):
    d, s = (_table(both_runs[e], quarter, "rule_runs") for e in ("duckdb", "spark"))
    assert d.schema == s.schema == pl.Schema(RULE_RUN_SCHEMA)
    assert d.to_dicts() == s.to_dicts()
    skipped = set(d.filter(pl.col("status") == "NOT_EVALUATED")["rule_id"])
    assert skipped == ({"PNI_EDUCATION_AID"} if quarter == WITHDRAWN[0] else set())


@pytest.mark.parametrize("quarter", QUARTERS, ids=str)
def test_both_engines_give_the_same_lifecycle_and_data_findings(both_runs, quarter):
    for name in ("warning_lifecycle", "data_findings", "warnings", "feedback"):
        d, s = (_table(both_runs[e], quarter, name) for e in ("duckdb", "spark"))
        assert d.to_dicts() == s.to_dicts(), name
    statuses = set(_table(both_runs["spark"], quarter, "warning_lifecycle")["status"])
    if quarter == WITHDRAWN[0]:
        assert {"CARRIED_OVER", "RECURRING", "RESOLVED"} <= statuses


def test_a_reform_on_a_quarter_evaluated_on_spark_is_compared_from_its_staging_tables(both_runs):
    """Spark saves no facts (`Engine.save_parquet`): `safetynet whatif` on its quarter builds
    them again, and compares as on the quarter DuckDB evaluated and saved."""
    from pipelines.core.pseudonym import DEMO_KEY
    from pipelines.policy import whatif

    quarter = QUARTERS[-1]
    example = Path(__file__).resolve().parent.parent / "rules" / "reforms" / "dibao_plus_5pct.yaml"
    reform = whatif.load_reform(example)
    assert not Outputs(both_runs["spark"]).quarter(quarter).saved_facts.exists()
    results = {
        e: whatif.run(both_runs[e], quarter, reform, DEMO_KEY.encode(), as_of=dt.date(2026, 10, 1))
        for e in ("duckdb", "spark")
    }
    assert results["duckdb"].baseline_from == "the quarter's saved evaluation"
    assert results["spark"].baseline_from == "evaluated again: no facts were saved for the quarter"
    assert results["spark"].changes.equals(results["duckdb"].changes)
    assert results["duckdb"].changes["newly_flagged"].sum() > 0


@pytest.mark.parametrize("quarter", QUARTERS, ids=str)
def test_both_engines_write_byte_identical_routed_files(both_runs, quarter):
    files = {
        e: {p.relative_to(both_runs[e]): p.read_bytes() for p in _routed(both_runs[e], quarter)}
        for e in both_runs
    }
    assert files["duckdb"], "no routed files"
    assert files["duckdb"] == files["spark"]


def _routed(out: Path, quarter: Quarter) -> list[Path]:
    return sorted(Outputs(out).quarter(quarter).routed_files())


def test_both_engines_load_the_same_warehouse_rows(both_runs):
    def rows(out: Path) -> dict[str, list]:
        with duckdb.connect(str(Outputs(out).warehouse), read_only=True) as con:
            names = [t for (t,) in con.sql("select table_name from duckdb_tables()").fetchall()]
            return {t: sorted(map(repr, con.sql(f"select * from {t}").fetchall())) for t in names}

    d, s = rows(both_runs["duckdb"]), rows(both_runs["spark"])
    assert set(d) == set(s) and sum(map(len, d.values())) > 500
    for table in d:
        assert d[table] == s[table], table


def test_the_feedback_reached_the_lifecycle_on_both_engines(both_runs):
    answered = [
        _table(both_runs["spark"], q, "warning_lifecycle")["feedback_action"].drop_nulls().len()
        for q in QUARTERS
    ]
    assert sum(answered) > 0


# ---- the lifecycle's comparison on its own, a history with every kind of answer ----------------


def _precedence() -> list[str]:
    """The feedback actions in the order the lifecycle breaks a tie of `action_date` by
    (domain.md), read from the one `case` of its window."""
    tree = sqlglot.parse_one(LIFECYCLE_SQL.read_text(encoding="utf-8"), read="duckdb")
    (window,) = tree.find_all(sqlglot.exp.Window)
    (case,) = window.find_all(sqlglot.exp.Case)
    ranked = sorted(case.args["ifs"], key=lambda when: int(when.args["true"].name))
    return [when.this.name for when in ranked]


def test_a_random_history_of_raised_warnings_and_answers_gives_the_same_lifecycle(spark, duck):
    rng = random.Random(11)
    keys = [f"{r}-{i:016x}" for i, r in enumerate(["NE_DIBAO", "PNI_EDUCATION_AID"] * 30)]
    actions = _precedence()
    previous = {"duckdb": None, "spark": None}
    seen = set()
    for q in [Quarter(2025, 3), Quarter(2025, 4), Quarter(2026, 1), Quarter(2026, 2)]:
        raised = pl.DataFrame(
            [
                {"warning_key": k, "rule_id": k.split("-")[0], "routed_to": "mca"}
                | {"county_code": "350102"}
                for k in keys
                if rng.random() < 0.6
            ]
        )
        answers = [
            {"quarter": str(q), "department": "mca", "warning_key": k}
            | {
                "action": rng.choice(actions),
                "action_date": q.start + dt.timedelta(rng.choice([3, 3, 40])),
            }
            for k in keys
            for _ in range(rng.choice([0, 0, 1, 2]))
        ]
        feedback = pl.DataFrame(answers, schema=lifecycle.FEEDBACK_SCHEMA)
        evaluated = {"NE_DIBAO"} | ({"PNI_EDUCATION_AID"} if rng.random() < 0.7 else set())
        out = {}
        for name, engine in (("duckdb", duck), ("spark", spark)):
            out[name] = lifecycle.advance(
                q,
                raised,
                evaluated,
                feedback,
                previous[name],
                escalate_after=2,
                dismissal_quarters=2,
                engine=engine,
            )
            previous[name] = out[name]
        assert out["duckdb"].to_dicts() == out["spark"].to_dicts()
        seen |= set(out["spark"]["status"])
    assert seen >= {"NEW", "RECURRING", "ESCALATED", "RESOLVED", "SUPPRESSED", "CARRIED_OVER"}


# ---- construct by construct --------------------------------------------------------------------


def _both(duck, spark, sql: str, tables: dict[str, pa.Table]) -> tuple[list, list]:
    """`sql` (the portable subset, macros included) on both engines, over the same tables."""
    results = []
    for engine in (duck, spark):
        engine.reset()
        engine.define_macros(facts.model_sql("macros"))
        for name, rows in tables.items():
            engine.table_from_arrow(name, rows)
        results.append(sorted(engine.arrow(sql).to_pylist(), key=repr))
    return results[0], results[1]


def _dates(*pairs: tuple[str, str]) -> pa.Table:
    return pa.table(
        {
            "born": pa.array([dt.date.fromisoformat(b) for b, _ in pairs], pa.date32()),
            "e": pa.array([dt.date.fromisoformat(e) for _, e in pairs], pa.date32()),
        }
    )


def test_completed_years_agree_on_each_side_of_month_ends_and_29_february(duck, spark):
    cases = _dates(
        ("2008-02-29", "2026-02-28"),  # the day before a leap-day birthday in a common year
        ("2008-02-29", "2026-03-01"),
        ("2008-02-29", "2028-02-28"),
        ("2008-02-29", "2028-02-29"),  # the birthday itself, in a leap year
        ("2000-01-31", "2018-01-30"),
        ("2000-01-31", "2018-01-31"),
        ("2000-12-31", "2018-12-30"),
        ("2000-12-31", "2019-01-01"),
        ("1966-06-30", "2026-06-30"),
        ("1966-07-01", "2026-06-30"),
    )
    d, s = _both(
        duck,
        spark,
        "select born, e, completed_years(born, e) as years from cases",
        {"cases": cases},
    )
    assert d == s
    by = {(r["born"].isoformat(), r["e"].isoformat()): r["years"] for r in d}
    assert by[("2008-02-29", "2026-02-28")] == 17 and by[("2008-02-29", "2026-03-01")] == 18
    assert by[("2000-01-31", "2018-01-30")] == 17 and by[("2000-01-31", "2018-01-31")] == 18


def test_birth_dates_in_identity_numbers_agree_and_an_impossible_one_is_null_on_both(duck, spark):
    ids = [
        "350102200402290011",  # 29 February of a leap year
        "350102200302290011",  # 29 February of a common year: no such day
        "350102199913320011",  # month 13
        "350102199904310011",  # 31 April
        "35010220001231001X",
        "3501021999",  # too short for a date
        None,
    ]
    d, s = _both(
        duck,
        spark,
        "select id, id_birth_date(id) as born, mask_id(id) as masked from ids",
        {"ids": pa.table({"id": pa.array(ids, pa.string())})},
    )
    assert d == s
    born = {r["id"]: r["born"] for r in d}
    assert born["350102200402290011"] == dt.date(2004, 2, 29)
    assert born["350102200302290011"] is None and born["350102199913320011"] is None


def test_nulls_in_comparisons_and_aggregates_and_empty_groups_agree(duck, spark):
    rows = pa.table(
        {
            "g": pa.array(["a", "a", "b", "c", "c"], pa.string()),
            "x": pa.array([1, None, None, 5, 7], pa.int64()),
            "flag": pa.array([True, None, None, False, None], pa.bool_()),
            "money": pa.array(
                [Decimal("1.10"), None, None, Decimal("0.00"), Decimal("2.05")],
                pa.decimal128(18, 2),
            ),
        }
    )
    sql = """select g, count(*) as n, count(x) as nx, sum(x) as sx, min(x) as mn,
            bool_or(flag) as any_flag, sum(money) as total,
            count(*) filter (where x > 2) as big, coalesce(max(x), -1) as mx,
            max(x) > 4 as over, list(x order by x) as xs
        from rows group by all"""
    d, s = _both(duck, spark, sql, {"rows": rows})
    assert d == s
    assert {r["g"]: r["xs"] for r in d} == {"a": [1, None], "b": [None], "c": [5, 7]}
    # no group at all, and an aggregate over no rows
    empty = """select count(*) as n, sum(x) as sx, bool_or(flag) as f, list(x order by x) as xs,
            to_json(list(json_object('x', x) order by x)) as listed
        from rows where x > 100"""
    d, s = _both(duck, spark, empty, {"rows": rows})
    assert d == s == [{"n": 0, "sx": None, "f": None, "xs": None, "listed": None}]
    grouped = "select g, count(*) as n from rows where x > 100 group by g"
    assert _both(duck, spark, grouped, {"rows": rows}) == ([], [])


def test_chinese_text_orders_the_same_on_both(duck, spark):
    names = ["张三", "李四", "王五", "赵六", "欧阳娜娜", "Zhang", "zhang", "阿", "𠀋", "", "张三丰"]
    sql = """select to_json(list(json_object('name', name) order by name)) as listed,
            min(name) as first, max(name) as last,
            list(name order by name) as ordered
        from people"""
    d, s = _both(duck, spark, sql, {"people": pa.table({"name": pa.array(names, pa.string())})})
    assert d == s
    assert d[0]["ordered"] == sorted(names, key=lambda n: n.encode("utf-8"))


def test_money_at_its_largest_and_smallest_is_shown_and_summed_the_same(duck, spark):
    values = ["9999999999999999.99", "0.01", "0.00", "-1234.50", "1000.00", "2850.005"]
    money = pa.table(
        {
            "v": pa.array(
                [Decimal(v).quantize(Decimal("0.01")) for v in values], pa.decimal128(18, 2)
            )
        }
    )
    d, s = _both(duck, spark, "select v, yuan(v) as shown from money", {"money": money})
    assert d == s
    shown = {str(r["v"]): r["shown"] for r in d}
    assert shown["1000.00"] == "1,000.00" and shown["-1234.50"] == "-1,234.50"
    total = "select sum(v) as total, sum(v) > 9999999999999999.99 as beyond from money"
    d, s = _both(duck, spark, total, {"money": money})
    assert d == s and d[0]["beyond"] is True


def test_json_values_are_written_as_duckdb_writes_them(duck, spark):
    """Text, booleans, integers, dates, decimals of each precision and doubles from tiny to
    huge, in an object, in an object inside an object, in a list, and merged with a window."""
    doubles = [0.1, 1.0, 2410.7, 1e7, 12345678.9, 1.5e-7, 1e-6, 1e21, 1e20, 123456.789, -0.5]
    doubles += [1.2345678901234567e-4]  # 17 digits after a small exponent
    n = len(doubles)
    texts = ['引号"', "反斜杠\\", "换行\n", "制表\t", "普通", None, "ok", "/", "a", "b", "c"]
    texts += ["行\u2028分隔\u0085"]  # characters a Java regex's `.` does not match
    values = pa.table(
        {
            "i": pa.array(range(n), pa.int64()),
            "d": pa.array(doubles, pa.float64()),
            "m": pa.array([Decimal(f"{k * 1234.5:.2f}") for k in range(n)], pa.decimal128(18, 2)),
            "small": pa.array([Decimal(f"{k}.50") for k in range(n)], pa.decimal128(10, 2)),
            "whole": pa.array([Decimal(k * 100) for k in range(n)], pa.decimal128(12, 0)),
            "t": pa.array(texts, pa.string()),
            "b": pa.array([k % 3 == 0 if k % 4 else None for k in range(n)], pa.bool_()),
            "day": pa.array([dt.date(2024, 2, 29) + dt.timedelta(k) for k in range(n)]),
        }
    )
    obj = "json_object(" + ", ".join(f"'{c}', {c}" for c in values.column_names) + ")"
    sql = f"""select i, {obj} as evidence,
            json_object('outer', i, 'inner', {obj}) as members
        from v"""
    d, s = _both(duck, spark, sql, {"v": values})
    assert d == s
    listed = f"select to_json(list({obj} order by i)) as listed from v"
    d, s = _both(duck, spark, listed, {"v": values})
    assert d == s and d[0]["listed"].startswith('[{"i":0,')
    # a list whose elements may be NULL: JSON's null in the list on both
    gaps = """select to_json(list(case when i % 3 = 0 then json_object('i', i) end order by i))
        as listed from v"""
    d, s = _both(duck, spark, gaps, {"v": values})
    assert d == s and d[0]["listed"].startswith('[{"i":0},null,null,{"i":3}')
    merged = f"""select json_merge_patch(json_object('window_quarters', 4), evidence) as evidence
        from (select {obj} as evidence from v)"""
    d, s = _both(duck, spark, merged, {"v": values})
    assert d == s
    assert any('"window_quarters":4' in r["evidence"] for r in d)


# ---- Dagster's resource ------------------------------------------------------------------------


def test_the_dagster_resources_give_spark_only_when_spark_is_chosen(spark, tmp_path):
    from dagster_pyspark import LazyPySparkResource

    pyspark = pyspark_resource(tmp_path, "2GB")
    config = pyspark.spark_config
    assert isinstance(pyspark, LazyPySparkResource)
    assert config["spark.master"] == "local[*]" and config["spark.sql.ansi.enabled"] == "true"
    assert config["spark.driver.memory"] == "2g"
    assert config["spark.local.dir"] == str(Outputs(tmp_path).spark_spill)
    assert not any("jars" in k or "packages" in k for k in config)  # nothing fetched at run time
    # one JVM, one session: the run's is the module's
    assert PolicyEngine(engine="spark").spark_session(pyspark) is spark.spark
    assert PolicyEngine(engine="duckdb").spark_session(pyspark_resource(tmp_path, "2GB")) is None
