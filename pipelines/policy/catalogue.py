"""The rule catalogue (`rules/catalogue/*.yaml`, policy.md §2): the rules as data, checked.

A rule file names its id, Chinese and English names, category, subject, programmes, routing,
seed clause, the extracts it reads, whether it reads the twelve-month window, the parameters it
uses, the rules whose warnings it reads (`after`, for the suppressions of §2) and the SQL that
decides it. The SQL selects one row per warning with `subject_id`, `household_id`,
`household_source`, `county_code`, `display_id` (the person the warning is shown under),
`evidence` (JSON) and `reason_zh`; the evaluator adds everything the catalogue knows.

`reads`, `parameters` and `programmes` are declared beside the SQL because policy.md §4 and §3
state them for each rule (a rule *needs* an extract when its failure must stop the rule, which is
a policy statement, not something the SQL can say), and what the SQL reads is checked against the
declaration when the catalogue is loaded: sqlglot parses the SQL (DuckDB's dialect) of the rule
and of the fact models it reads (`sql/`), and the catalogue is refused, naming the file, when

- the SQL names a table that is neither a fact model, an extract, a parameter table nor `raised`;
- it reads an extract directly that `reads` does not declare (the registry and the roster, read by
  every rule, need no declaration), or `reads` declares an extract that neither the SQL nor a fact
  model it reads (at any depth) can reach;
- it binds a parameter (`$name`, a programme column of `programme_parameters`, the
  `county_standards` table) that `parameters` does not declare, or `parameters` declares one that
  neither the SQL nor its fact models use;
- `programmes` is declared and the SQL does not bind `$programmes`, or the other way round, or a
  programme is not one of the roster's;
- it reads `raised` without naming in `after` the rules whose warnings it reads, or the other way
  round; or it uses `$window_quarters` without `window: true`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import sqlglot
import yaml
from sqlglot import exp

from pipelines.core import parameters as policy_parameters
from pipelines.core.contracts import all_contracts, extract_contracts
from pipelines.core.departments import CORE_EXTRACTS, ROSTER, ROUTES
from pipelines.core.resources import CATALOGUE_DIR, read_yaml
from pipelines.policy.facts import MODELS, model_sql, parameter_tables, table_name

CATEGORIES = (
    "POLICY_NOT_IMPLEMENTED",
    "NEWLY_ELIGIBLE",
    "NO_LONGER_ELIGIBLE",
    "HARDSHIP_WITHOUT_POLICY",
)
SUBJECTS = ("PERSON", "HOUSEHOLD")
RAISED = "raised"  # the warnings raised so far this quarter (for the suppressing rules)
RAISED_COLUMNS = {
    "rule_id": "text",
    "category": "code",
    "subject_type": "code",
    "subject_id": "text",
    "household_id": "text",
    "household_source": "code",
    "county_code": "county",
    "display_id": "id",
    "evidence": "json",
    "reason_zh": "text",
}
# `$names` the evaluator binds itself, besides the parameters
EVALUATOR_VALUES = ("quarter", "quarter_end", "programmes", "window_quarters")


class CatalogueError(ValueError):
    """A rule file is malformed, or its declarations disagree with its SQL."""


@dataclass(frozen=True)
class Rule:
    rule_id: str
    version: int
    name_zh: str
    name_en: str
    category: str
    subject: str
    programmes: tuple[str, ...]
    routed_to: str
    policy_clause: str
    reads: tuple[str, ...]
    window: bool
    parameters: tuple[str, ...]
    after: tuple[str, ...]
    sql: str
    digest: str

    @property
    def rule_version(self) -> str:
        """The version the province gave the rule, and a digest of its file: any edit shows."""
        return f"{self.version}+{self.digest}"


# --- what a SQL text reads ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reads:
    """What one SQL text names: tables (CTEs excluded), `$names`, column names."""

    tables: frozenset[str]
    values: frozenset[str]
    columns: frozenset[str]


def sql_reads(sql: str, where: str) -> Reads:
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except sqlglot.errors.ParseError as e:
        first = str(e).splitlines()[0]
        raise CatalogueError(f"{where}: the SQL does not parse as DuckDB SQL: {first}") from None
    tables, values, columns = set(), set(), set()
    for tree in trees:
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        tables |= {t.name for t in tree.find_all(exp.Table)} - ctes
        values |= {p.name for p in tree.find_all(exp.Placeholder)}
        columns |= {c.name for c in tree.find_all(exp.Column)}
    return Reads(frozenset(tables), frozenset(values), frozenset(columns))


def reads_an_extract(sql: str) -> bool:
    """Whether a SQL text reads an extract's staging table directly."""
    return bool(sql_reads(sql, "sql").tables & _extract_tables().keys())


def _extract_tables() -> dict[str, str]:
    """`<dept>_<extract>` table -> `<dept>/<extract>`."""
    return {
        table_name(c.department, c.extract): f"{c.department}/{c.extract}"
        for c in extract_contracts()
    }


def bound_as(parameter: str) -> frozenset[str]:
    """The `$names` a parameter is bound as in the SQL: a range as `<p>_min` and `<p>_max`."""
    known = policy_parameters.parameters()
    if parameter in known and known[parameter].keyed_by == "range":
        return frozenset({f"{parameter}_min", f"{parameter}_max"})
    return frozenset({parameter})


def _bound_parameter(name: str) -> str:
    """The parameter a `$name` binds (`bound_as` the other way)."""
    base = name.removesuffix("_min").removesuffix("_max")
    return base if base != name and name in bound_as(base) else name


def _parameters_of(reads: Reads) -> set[str]:
    """The parameters a SQL text uses: its `$names` (a range as `_min`/`_max`), the programme
    columns it names when it reads `programme_parameters`, the standard of `county_standards`."""
    used = {_bound_parameter(name) for name in reads.values - set(EVALUATOR_VALUES)}
    for table, held in parameter_tables().items():
        if table in reads.tables:
            used |= {p for p in held if p in reads.columns}
    return used


@functools.cache
def model_reads() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Fact model -> (the extracts it reads, the parameters it uses), through the models it
    reads, at any depth (`sql/` in `MODELS` order, each reading only earlier ones)."""
    extracts = _extract_tables()
    out: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for model in MODELS:
        reads = sql_reads(model_sql(model), f"{model}.sql")
        ext, params = set(), _parameters_of(reads)
        for table in reads.tables:
            if table in extracts:
                ext.add(extracts[table])
            elif table in out:
                ext |= out[table][0]
                params |= out[table][1]
            elif table not in parameter_tables():
                raise CatalogueError(f"{model}.sql reads {table}, which no earlier model makes")
        out[model] = (frozenset(ext), frozenset(params))
    return out


# --- loading and checking a rule ---------------------------------------------------------------


def _check(rule: Rule, where: str, rule_ids: set[str]) -> None:
    def fail(message: str) -> None:
        raise CatalogueError(f"{where}: {message}")

    for value, allowed, what in (
        (rule.category, CATEGORIES, "category"),
        (rule.subject, SUBJECTS, "subject"),
        (rule.routed_to, ROUTES, "routed_to"),
    ):
        if value not in allowed:
            fail(f"{what} {value!r} is not one of {allowed}")
    reads = sql_reads(rule.sql, where)
    extracts = _extract_tables()
    core = {f"{d}/{e}" for d, e in CORE_EXTRACTS}
    known = set(extracts.values())
    bad = sorted(set(rule.reads) - (known - core))
    if bad:
        fail(f"reads names {', '.join(bad)}: not an extract besides the registry and roster")
    models = model_reads()
    reachable, parameters_used = set(), _parameters_of(reads)
    for table in sorted(reads.tables):
        if table in extracts:
            reachable.add(extracts[table])
            if extracts[table] not in set(rule.reads) | core:
                fail(f"the SQL reads {table} but reads does not declare {extracts[table]}")
        elif table in models:
            reachable |= models[table][0]
            parameters_used |= models[table][1]
        elif table not in parameter_tables() and table != RAISED:
            fail(f"the SQL reads {table}: not a fact model, an extract or a parameter table")
    unreachable = sorted(set(rule.reads) - reachable)
    if unreachable:
        fail(f"reads declares {', '.join(unreachable)}, which neither the SQL nor its models read")
    direct = _parameters_of(reads)
    undeclared = sorted(direct - set(rule.parameters))
    if undeclared:
        fail(f"the SQL uses parameters {', '.join(undeclared)} that parameters does not declare")
    unknown = sorted(set(rule.parameters) - set(policy_parameters.parameters()))
    if unknown:
        fail(f"parameters names unknown parameters {', '.join(unknown)}")
    unused = sorted(set(rule.parameters) - parameters_used)
    if unused:
        fail(f"parameters declares {', '.join(unused)}, which neither the SQL nor its models use")
    binds_programmes = "programmes" in reads.values
    if bool(rule.programmes) != binds_programmes:
        fail(
            "programmes is declared but the SQL does not bind $programmes"
            if rule.programmes
            else "the SQL binds $programmes but programmes is empty"
        )
    roster = set(all_contracts()[ROSTER].column("program").codes or ())
    strange = sorted(set(rule.programmes) - roster)
    if strange:
        fail(f"programmes {', '.join(strange)} are not programmes of the roster")
    if (RAISED in reads.tables) != bool(rule.after):
        fail(
            "the SQL reads raised without after naming the rules whose warnings it reads"
            if RAISED in reads.tables
            else "after names rules but the SQL does not read raised"
        )
    if set(rule.after) - rule_ids:
        fail(f"after names unknown rules {', '.join(sorted(set(rule.after) - rule_ids))}")
    if "window_quarters" in reads.values and not rule.window:
        fail("the SQL uses $window_quarters but window is false")


def load_rule(path: Path) -> Rule:
    text = path.read_text(encoding="utf-8")
    where = path.name
    try:
        doc = read_yaml(text)
    except yaml.YAMLError as e:
        raise CatalogueError(f"{where}: cannot be read as YAML ({type(e).__name__})") from None
    try:
        rule = Rule(
            rule_id=doc["rule_id"],
            version=int(doc["version"]),
            name_zh=doc["name_zh"],
            name_en=doc["name_en"],
            category=doc["category"],
            subject=doc["subject"],
            programmes=tuple(doc.get("programmes") or ()),
            routed_to=doc["routed_to"],
            policy_clause=doc["policy_clause"],
            reads=tuple(doc.get("reads") or ()),
            window=bool(doc["window"]),
            parameters=tuple(doc.get("parameters") or ()),
            after=tuple(doc.get("after") or ()),
            sql=doc["sql"],
            digest=hashlib.sha256(text.encode("utf-8")).hexdigest()[:8],
        )
    except (KeyError, TypeError) as e:
        raise CatalogueError(f"{where}: missing field {e}") from None
    if path.stem != rule.rule_id:
        raise CatalogueError(f"{where}: file name must be the rule id {rule.rule_id}")
    return rule


@functools.cache
def catalogue(directory: Path = CATALOGUE_DIR) -> tuple[Rule, ...]:
    """Every rule, checked, in an order where each comes after the rules it reads (`after`).
    Read once per process: the catalogue ships with the package and does not change while it
    runs."""
    paths = sorted(Path(directory).glob("*.yaml"))
    rules = {r.rule_id: r for r in map(load_rule, paths)}
    for path in paths:
        _check(rules[path.stem], path.name, set(rules))
    ordered: list[Rule] = []
    done: set[str] = set()

    def visit(rule: Rule, path: tuple[str, ...]) -> None:
        if rule.rule_id in done:
            return
        if rule.rule_id in path:
            raise CatalogueError(f"rules read each other in a circle: {' → '.join(path)}")
        for name in rule.after:
            visit(rules[name], (*path, rule.rule_id))
        done.add(rule.rule_id)
        ordered.append(rule)

    for rule in sorted(rules.values(), key=lambda r: (CATEGORIES.index(r.category), r.rule_id)):
        visit(rule, ())
    return tuple(ordered)
