"""Rules and parameters are data, and the data is checked when it is loaded: a parameter file
that breaks a rule of `core/parameters.py`, or a rule whose declarations disagree with its SQL
(`policy/catalogue.py`), is refused with an error naming the file (and the parameter)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from pipelines.core import parameters
from pipelines.core.resources import CATALOGUE_DIR, PARAMETERS_DIR
from pipelines.policy import catalogue, facts

# --- parameters --------------------------------------------------------------------------------


def _parameter(tmp_path: Path, name: str, edit) -> Path:
    doc = yaml.safe_load((PARAMETERS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    edit(doc)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_every_shipped_parameter_file_passes_its_checks():
    loaded = parameters.parameters()
    assert len(loaded) == len(list(PARAMETERS_DIR.glob("*.yaml")))
    # each is read: by a rule, a fact model, or the gate and the lifecycle (`facts.NOT_BOUND`)
    read = {name for rule in catalogue.catalogue() for name in rule.parameters}
    read |= {name for _, used in catalogue.model_reads().values() for name in used}
    assert set(loaded) == read | facts.NOT_BOUND
    assert {p.keyed_by for p in loaded.values()} == {None, "program", "range", "area"}


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "hardship_oop_12m",
            lambda d: d.update(unit="dollars"),
            "unit 'dollars' is not one of",
        ),
        (
            "hardship_oop_12m",
            lambda d: d.pop("reference"),
            "reference is missing",
        ),
        (
            "hardship_oop_12m",
            lambda d: d["values"].append({"value": 30000}),
            "value 2 has no `from` date",
        ),
        (
            "dibao_standard",
            lambda d: d["values"].reverse(),
            "value 2 from 2025-07-01 does not come after 2026-07-01: dates ascend",
        ),
        (
            "dibao_standard",
            lambda d: d["values"][2]["value"].pop("350128"),
            "value 3 from 2026-07-01 leaves a gap: no value for 350128",
        ),
        (
            "dibao_standard",
            lambda d: d["values"][0]["value"].pop("350900"),
            "value 1 from 2024-07-01 has no value for 350900",
        ),
        (
            "vehicle_value_limit",
            lambda d: d["values"][0]["value"].pop("TEKUN"),
            "has no value for TEKUN",
        ),
        (
            "supporter_age",
            lambda d: d["values"][0].update(value={"min": 60, "max": 18}),
            "min 60 is above max 18",
        ),
        (
            "max_quarantine_share",
            lambda d: d["values"][0].update(value=5),
            "value 5 is more than 1 (a share)",
        ),
        (
            "hardship_oop_12m",
            lambda d: d["values"][0].update(value=20000.125),
            "more than two decimals",
        ),
        (
            "tekun_elderly_age",
            lambda d: d["values"][0].update(value=None),
            "value 1 from 2024-04-01 is empty",
        ),
    ],
)
def test_a_parameter_file_that_breaks_a_rule_is_refused_naming_file_and_parameter(
    tmp_path, name, edit, message
):
    path = _parameter(tmp_path, name, edit)
    with pytest.raises(parameters.ParameterError) as error:
        parameters.load_parameter(path)
    assert str(error.value).startswith(f"{name}.yaml: parameter {name}: ")
    assert message in str(error.value)


def test_a_parameter_file_named_for_another_parameter_is_refused(tmp_path):
    path = _parameter(tmp_path, "hardship_oop_12m", lambda d: None).rename(tmp_path / "oop.yaml")
    with pytest.raises(parameters.ParameterError, match="must be named hardship_oop_12m.yaml"):
        parameters.load_parameter(path)


# --- the rule catalogue ------------------------------------------------------------------------


def _catalogue(tmp_path: Path, rule_id: str, edit) -> Path:
    folder = tmp_path / "catalogue"
    shutil.copytree(CATALOGUE_DIR, folder)
    path = folder / f"{rule_id}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


def test_the_shipped_catalogue_agrees_with_its_sql():
    rules = catalogue.catalogue()
    assert sorted(r.rule_id for r in rules) == sorted(p.stem for p in CATALOGUE_DIR.glob("*.yaml"))
    assert rules
    # every rule scoped to programmes binds them; the others do not
    assert {r.rule_id for r in rules if r.programmes} == {
        r.rule_id for r in rules if "$programmes" in r.sql
    }


def _sub(pattern: str, replacement: str):
    def edit(doc):
        doc["sql"], n = re.subn(pattern, replacement, doc["sql"])
        assert n, pattern  # the edit must hit the rule's SQL

    return edit


@pytest.mark.parametrize(
    ("rule_id", "edit", "message"),
    [
        (  # an extract read by the SQL but not declared: its failure would go unnoticed
            "PNI_EDUCATION_AID",
            lambda d: d.update(reads=["moe/students"]),
            "the SQL reads moe_student_aid but reads does not declare moe/student_aid",
        ),
        (  # declared but unreachable from the SQL and its fact models
            "PNI_EDUCATION_AID",
            lambda d: d["reads"].append("mohurd/rural_housing"),
            "reads declares mohurd/rural_housing, which neither the SQL nor its models read",
        ),
        (
            "PNI_EDUCATION_AID",
            lambda d: d["reads"].append("mps/residents"),
            "not an extract besides the registry and roster",
        ),
        (  # a parameter bound by the SQL but not declared (it would not be in rule_runs)
            "NE_DIBAO",
            lambda d: d["parameters"].remove("residential_property_limit"),
            "uses parameters residential_property_limit that parameters does not declare",
        ),
        (  # a programme column of programme_parameters read, not declared
            "PNI_MEDICAL_ASSISTANCE",
            lambda d: d.update(parameters=[]),
            "uses parameters medical_assistance_deductible",
        ),
        (  # declared, used neither by the SQL nor by the models it reads
            "NLE_DECEASED",
            lambda d: d["parameters"].append("dibao_edge_multiplier"),
            "parameters declares dibao_edge_multiplier, which neither the SQL nor its models use",
        ),
        (
            "NLE_DECEASED",
            lambda d: d["parameters"].append("no_such_parameter"),
            "unknown parameters no_such_parameter",
        ),
        (  # programmes declared and not bound: the declaration would say nothing
            "NLE_DECEASED",
            _sub(r"and list_contains\(\$programmes::varchar\[\], program\)", ""),
            "programmes is declared but the SQL does not bind $programmes",
        ),
        (
            "HWP_UNMATCHED_HARDSHIP",
            lambda d: d.update(programmes=["DIBAO", "WELFARE"]),
            "programmes is declared but the SQL does not bind $programmes",
        ),
        (
            "NLE_DECEASED",
            lambda d: d.update(programmes=["DIBAO", "WELFARE"]),
            "programmes WELFARE are not programmes of the roster",
        ),
        (
            "NE_DIBAO_EDGE",
            lambda d: d.update(after=[]),
            "the SQL reads raised without after naming the rules",
        ),
        (
            "PNI_EDUCATION_AID",
            lambda d: d.update(window=False),
            "the SQL uses $window_quarters but window is false",
        ),
        (
            "PNI_EDUCATION_AID",
            _sub(r"from moe_student_aid", "from moe_student_grants"),
            "the SQL reads moe_student_grants: not a fact model, an extract or a parameter table",
        ),
        (
            "PNI_EDUCATION_AID",
            _sub(r"select \* from moe_students\)", "select * from moe_students"),
            "the SQL does not parse as DuckDB SQL",
        ),
        (
            "PNI_EDUCATION_AID",
            lambda d: d.update(routed_to="police"),
            "routed_to 'police' is not one of",
        ),
    ],
)
def test_a_rule_whose_declarations_disagree_with_its_sql_is_refused(
    tmp_path, rule_id, edit, message
):
    folder = _catalogue(tmp_path, rule_id, edit)
    with pytest.raises(catalogue.CatalogueError) as error:
        catalogue.catalogue(folder)
    assert str(error.value).startswith(f"{rule_id}.yaml: "), str(error.value)
    assert message in str(error.value)


# --- what the SQL really reads, on data --------------------------------------------------------


@pytest.fixture(scope="module")
def gated_quarter(tmp_path_factory):
    """A generated `test`-scale province (two quarters, so W holds two), gated."""
    from pipelines.core.contracts import extract_contracts
    from pipelines.core.quarters import Quarter
    from pipelines.gate import accounting
    from pipelines.gate import extract as gate
    from pipelines.generate import generate
    from pipelines.policy import facts

    root = tmp_path_factory.mktemp("reads")
    landing, out = root / "landing", root / "out"
    quarters = [Quarter.parse("2026Q2"), Quarter.parse("2026Q3")]
    generate(landing, "test", quarters, 1)
    for q in quarters:
        for c in extract_contracts():
            checked = gate.run_extract(c, landing, out, q)
            checked.close()
            accounting.save_result(out, checked.result)
    return facts.Sources.from_out(out, quarters[-1])


def test_a_rule_raises_the_same_warnings_when_an_extract_it_does_not_declare_is_empty(
    gated_quarter,
):
    """The check of the declarations against the SQL sees the tables a rule names and the
    models it reads, not which of a model's columns it uses; this one looks at the data. For
    each extract, its accepted rows are taken away (still PASSED, so every rule is evaluated):
    a rule that does not declare the extract must raise exactly the same subjects. A rule that
    did depend on it undeclared would, when the extract failed, read "nobody" instead of being
    NOT_EVALUATED (policy.md §4). A rule that reads the warnings of others (`after`) also
    depends on what they read."""
    import dataclasses

    from pipelines.core import pseudonym
    from pipelines.core.contracts import extract_contracts
    from pipelines.policy import evaluate
    from pipelines.policy.engine import DuckDBEngine

    key = pseudonym.DEMO_KEY.encode()
    sources = gated_quarter

    def subjects(s) -> dict[str, set[tuple]]:
        out: dict[str, set[tuple]] = {}
        frame = evaluate.evaluate_sources(s, key, engine=engine).warnings
        for rule_id, *subject in frame.select("rule_id", "id_number", "household_id").iter_rows():
            out.setdefault(rule_id, set()).add(tuple(subject))
        return out

    with DuckDBEngine() as engine:
        base = subjects(sources)
        assert sum(map(len, base.values())) > 50  # the comparison below means something
        changed: dict[str, set[str]] = {}
        for c in extract_contracts():
            name = f"{c.department}/{c.extract}"
            if (c.department, c.extract) in (("mps", "residents"), ("mca", "assistance_roster")):
                continue
            staging = {
                k: v for k, v in sources.staging.items() if k[1:] != (c.department, c.extract)
            }
            now = subjects(dataclasses.replace(sources, staging=staging))
            for rule_id in set(base) | set(now):
                if base.get(rule_id, set()) != now.get(rule_id, set()):
                    changed.setdefault(rule_id, set()).add(name)
    rules = {r.rule_id: r for r in catalogue.catalogue()}

    def declared_by(rule_id: str) -> set[str]:
        rule = rules[rule_id]
        return set(rule.reads).union(*(declared_by(a) for a in rule.after))

    undeclared = {
        rule_id: sorted(changed.get(rule_id, set()) - declared_by(rule_id))
        for rule_id in rules
        if changed.get(rule_id, set()) - declared_by(rule_id)
    }
    assert undeclared == {}
    # and the data does exercise the declarations this guards
    assert {"hrss/employment", "mnr/properties", "nhsa/settlements"} <= changed["NE_DIBAO"]
    assert {"hrss/employment", "hrss/pensions"} <= changed["NLE_INCOME"]
    assert changed["PNI_EDUCATION_AID"] == {"moe/students", "moe/student_aid"}


def test_a_rule_raises_the_same_warnings_when_a_parameter_it_does_not_declare_has_no_value(
    gated_quarter,
):
    """The same for parameters: each policy parameter in turn is given no value in effect on the
    quarter's end (bound as NULL, as policy.md §3 has it). A rule that declares it is
    NOT_EVALUATED; a rule that does not must raise exactly the same subjects — else it used the
    parameter undeclared (in its own SQL or through a fact model) and would silently run on a
    NULL. A rule that reads the warnings of others (`after`: the suppressions of policy.md §2)
    also depends on what they declare: with them not evaluated it has nothing to suppress."""
    import dataclasses
    import datetime as dt

    from pipelines.core import pseudonym
    from pipelines.policy import evaluate
    from pipelines.policy.engine import DuckDBEngine
    from pipelines.policy.facts import NOT_BOUND

    key = pseudonym.DEMO_KEY.encode()
    shipped = parameters.parameters()
    later = gated_quarter.quarter.end + dt.timedelta(days=1)

    def subjects() -> tuple[dict[str, set[tuple]], set[str]]:
        ev = evaluate.evaluate_sources(gated_quarter, key, engine=engine)
        out: dict[str, set[tuple]] = {}
        for rule_id, *subject in ev.warnings.select(
            "rule_id", "id_number", "household_id"
        ).iter_rows():
            out.setdefault(rule_id, set()).add(tuple(subject))
        skipped = set(ev.rule_runs.filter(ev.rule_runs["status"] == "NOT_EVALUATED")["rule_id"])
        return out, skipped

    rules = {r.rule_id: r for r in catalogue.catalogue()}

    def declared_by(rule_id: str) -> set[str]:
        rule = rules[rule_id]
        return set(rule.parameters).union(*(declared_by(a) for a in rule.after))

    undeclared: dict[str, list[str]] = {}
    with DuckDBEngine() as engine, pytest.MonkeyPatch.context() as patch:
        base, skipped = subjects()
        assert skipped == set()
        for name in sorted(set(shipped) - NOT_BOUND):
            gone = dataclasses.replace(
                shipped[name], values=tuple((later, v) for _, v in shipped[name].values)
            )
            patch.setattr(parameters, "parameters", lambda *a, n=name, g=gone: {**shipped, n: g})
            now, skipped = subjects()
            for r in rules.values():
                assert (r.rule_id in skipped) == (name in r.parameters), (name, r.rule_id)
                changed = base.get(r.rule_id, set()) != now.get(r.rule_id, set())
                if changed and name not in declared_by(r.rule_id):
                    undeclared.setdefault(r.rule_id, []).append(name)
    assert undeclared == {}
