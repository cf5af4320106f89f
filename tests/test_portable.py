"""The portable subset (pipelines/policy/portable.py, docs/architecture.md): every SQL text the
policy stage and the lifecycle run translates to Spark SQL, and a construct whose meaning differs
between the engines is refused, named, instead of translated into something else. What the
translations compute is checked against DuckDB in tests/test_spark.py."""

from __future__ import annotations

import pytest
import sqlglot

from pipelines.core.resources import CATALOGUE_DIR, LIFECYCLE_SQL, SQL_DIR
from pipelines.policy import evaluate, facts, portable
from pipelines.policy.catalogue import catalogue
from pipelines.policy.engine import parameters_named


def _statements() -> dict[str, str]:
    texts = {f"sql/{m}.sql": facts.model_sql(m) for m in facts.MODELS}
    texts |= {f"rules/catalogue/{r.rule_id}.yaml": evaluate.raise_sql(r) for r in catalogue()}
    texts["pipelines/publish/lifecycle.sql"] = LIFECYCLE_SQL.read_text(encoding="utf-8")
    texts["evaluate.WARNINGS_SQL"] = evaluate.WARNINGS_SQL
    texts["evaluate.FINDINGS_SQL"] = evaluate.FINDINGS_SQL
    return texts


@pytest.mark.parametrize("name", sorted(_statements()))
def test_every_fact_model_rule_and_the_lifecycle_translates_to_spark_sql(name):
    spark_sql = portable.translate(_statements()[name])
    # what comes out is one Spark statement, with the macros gone and the parameters named
    tree = sqlglot.parse_one(spark_sql, read="spark")
    called = {f.name.lower() for f in tree.find_all(sqlglot.exp.Anonymous)}
    assert not called & set(portable.macros()), "a macro was left in"
    named = {p.name for p in tree.find_all(sqlglot.exp.Placeholder)}
    assert named == parameters_named(_statements()[name])  # `$name` -> `:name`, each one
    assert not list(tree.find_all(sqlglot.exp.Parameter))
    assert "json_object" not in spark_sql.lower() and "json_merge_patch" not in spark_sql.lower()


def test_the_translation_covers_every_fact_model_and_every_rule():
    names = _statements()
    rules = {f"rules/catalogue/{p.name}" for p in CATALOGUE_DIR.glob("*.yaml")}
    assert {n for n in names if n.startswith("rules/")} == rules
    assert len(rules) == len(catalogue())
    # sql/ holds the fact models and the macros the translation expands into them, nothing else
    models = {f"sql/{p.name}" for p in SQL_DIR.glob("*.sql")} - {"sql/macros.sql"}
    assert {n for n in names if n.startswith("sql/")} == models


def test_parameters_become_spark_named_parameters():
    assert ":quarter" in portable.translate("select $quarter as q")


def test_a_macro_is_expanded_with_its_arguments_in_place():
    out = portable.translate("select mask_id(id_number) as m from t")
    assert "mask_id" not in out.lower() and "SUBSTR" in out.upper()


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("select date_diff('year', a, b) as d from t", "date_diff"),
        ("select a / b as d from t", "division"),
        ("select a // b as d from t", "division"),
        ("select list(x) as l from t", "needs an order"),
        ("select list(x order by x desc) as l from t", "ascending"),
        ("select try_strptime(x, '%d/%m/%Y') as d from t", "date layout"),
        ("select format('{:.3f}', x) as f from t", "money"),
        ("select json_object('a', 1) as blob from t", "named one of"),
        ("select json_object(k, 1) as evidence from t", "string literal"),
        ("select to_json(list(x order by x)) as listed from t", "json_object"),
        ("select x::json as evidence from t", "only JSON"),
        ("select from where", "does not parse"),
    ],
    ids=lambda v: v if len(v) < 20 else None,
)
def test_a_construct_outside_the_subset_is_refused_naming_it(sql, named):
    with pytest.raises(portable.NotPortable, match=named):
        portable.translate(sql)


def test_only_spark_is_a_translation_target():
    with pytest.raises(portable.NotPortable, match="no translation to"):
        portable.translate("select 1 as x", dialect="postgres")
