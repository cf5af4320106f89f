"""Which columns of the fact models, and which rules, a change of parameters can reach.

A reform (`whatif.py`) changes a few parameters; `evaluate.evaluate_from_baseline` evaluates again
only what they reach. The question is asked of the SQL texts themselves (`sql/`,
`rules/catalogue/`), column by column: sqlglot qualifies each text against the columns of what it
reads (the extracts' contracts, the parameter tables, the models before it), expanding every `*`,
and each query scope (the final select, each CTE, each subquery) is followed:

- a column a scope selects is reached when its expression names a reached column of a table or
  scope it reads, or a changed `$parameter`, or holds a subquery that reaches anything;
- a scope's rows are reached (and then every column it selects) when a table or scope it reads
  has reached rows, when its `where`, join conditions, `group by`, `having`, `qualify`,
  `distinct (on)`, named windows, `order by`, `limit` or `offset` name anything reached, or, for
  a union without `all`, when any column is reached; a union's column is reached when either
  side's is; `except` and `intersect` are reached whole when either side reaches anything;
- the parameter tables (`county_standards`, `programme_parameters`) hold one column per
  parameter: a changed parameter's column is reached; their rows only when a keyed parameter
  gains or loses a key or its value (`reshaped`: one row per county and per programme
  otherwise, whatever the values);
- `raised` (the warnings of the rules before) is not followed here: the evaluator evaluates a
  rule that reads it again when any rule before it was (`evaluate.evaluate_from_baseline`);
- a name the analysis cannot resolve, a table it does not know, and a text holding what it does
  not follow (`unfollowed`: `COLUMNS(…)`, `unnest`, lateral joins, pivots, table functions,
  `union by name`, a struct's `.*`) count as reached.

A model is built again, and a rule evaluated again, when anything of its result is reached (its
rows or any column). The answer may be more than what really changes (a column is reached
through a `case` branch the data never takes), never less: tests/test_whatif.py compares the
result with the whole quarter evaluated again, for one reform of each kind of parameter.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

from pipelines.core.contracts import extract_contracts
from pipelines.policy import facts
from pipelines.policy.catalogue import RAISED, RAISED_COLUMNS, bound_as


@dataclass(frozen=True)
class Reached:
    """What of a table or query result a change reaches: its rows (then all of it), or some
    of its columns."""

    rows: bool
    columns: frozenset[str]

    @property
    def anything(self) -> bool:
        return self.rows or bool(self.columns)

    def reaches(self, column: str) -> bool:
        return self.rows or column in self.columns


NOTHING = Reached(False, frozenset())


@functools.cache
def _base_schema() -> dict[str, dict[str, str]]:
    """The extracts' and the parameter tables' columns (types do not matter here)."""
    schema: dict[str, dict[str, str]] = {}
    for c in extract_contracts():
        columns = {col.name: "TEXT" for col in c.columns}
        if not c.is_snapshot:
            columns["quarter"] = "TEXT"
        schema[facts.table_name(c.department, c.extract)] = columns
    keys = {facts.PROGRAMME_TABLE: "program", facts.AREA_TABLE: "county_code"}
    for table, held in facts.parameter_tables().items():
        schema[table] = {keys[table]: "TEXT", **{n: "TEXT" for n in held}}
    schema[RAISED] = dict.fromkeys(RAISED_COLUMNS, "TEXT")
    return schema


@functools.cache
def _qualified(name: str, sql: str | None = None) -> exp.Expression:
    """A model's SQL (or the text `sql`: a rule's, named `name`), qualified against the
    extracts, the parameter tables and the models before it (every model, for a rule)."""
    before = facts.MODELS[: facts.MODELS.index(name)] if sql is None else facts.MODELS
    schema = dict(_base_schema())
    for model in before:
        schema[model] = {n: "TEXT" for n in _qualified(model).named_selects}
    text = facts.model_sql(name) if sql is None else sql
    tree = sqlglot.parse_one(text, read="duckdb")
    return qualify(tree, schema=schema, dialect="duckdb", validate_qualify_columns=False)


def placeholders(changed: Iterable[str]) -> frozenset[str]:
    """The `$names` the changed parameters are bound as (`catalogue.bound_as`)."""
    return frozenset().union(*(bound_as(p) for p in changed))


class Reach:
    """What a set of changed parameters reaches, model by model (in `facts.MODELS` order) and
    for any rule's SQL."""

    def __init__(self, changed: Iterable[str], reshaped: Iterable[str] = ()):
        """`changed`: the parameters whose value differs; `reshaped`: those of them whose
        parameter table rows differ (a keyed parameter gaining or losing a key or its value)."""
        self.changed = frozenset(changed)
        self.values = placeholders(self.changed)
        reshaped = set(reshaped)
        self.tables: dict[str, Reached] = {
            table: Reached(
                bool(reshaped & set(held)), frozenset(p for p in held if p in self.changed)
            )
            for table, held in facts.parameter_tables().items()
        }
        self.tables[RAISED] = NOTHING  # the evaluator follows a rule's readers of `raised`
        self.extracts = frozenset(_base_schema()) - set(self.tables)
        for model in facts.MODELS:
            self.tables[model] = self._of(_qualified(model))

    def model(self, name: str) -> Reached:
        return self.tables[name]

    def sql(self, key: str, sql: str) -> Reached:
        """A rule's SQL (`key` names it for the cache of qualified texts)."""
        return self._of(_qualified(key, sql))

    # -- following the scopes -----------------------------------------------------------------

    def _of(self, tree: exp.Expression) -> Reached:
        if not self.changed:
            return NOTHING
        root = build_scope(tree)
        if root is None or unfollowed(tree):  # what is not followed counts as reached
            return Reached(True, frozenset())
        return self._scope(root, {})

    def _scope(self, scope: Scope, memo: dict[int, Reached]) -> Reached:
        if id(scope) not in memo:
            memo[id(scope)] = (
                self._set_operation(scope, memo)
                if scope.set_operation_scopes  # (a CTE's union is not `is_set_operation`)
                else self._select(scope, memo)
            )
        return memo[id(scope)]

    def _set_operation(self, scope: Scope, memo: dict[int, Reached]) -> Reached:
        left, right = (self._scope(s, memo) for s in scope.set_operation_scopes)
        sides = [s.expression.named_selects for s in scope.set_operation_scopes]
        names = scope.expression.named_selects
        columns = {
            name
            for i, name in enumerate(names)
            if left.reaches(sides[0][i]) or right.reaches(sides[1][i])
        }
        distinct = bool(scope.expression.args.get("distinct"))
        rows = left.rows or right.rows or (distinct and bool(columns))
        if not isinstance(scope.expression, exp.Union):  # except, intersect: rows from both
            rows = rows or left.anything or right.anything
        return Reached(rows, frozenset(names) if rows else frozenset(columns))

    def _select(self, scope: Scope, memo: dict[int, Reached]) -> Reached:
        select = scope.expression
        nested = [(s.expression, self._scope(s, memo)) for s in scope.subquery_scopes]
        aliases: dict[str, bool] = {}  # this select's own columns, once known

        def column_reached(col: exp.Column) -> bool:
            if any(_within(col, sub) for sub, _ in nested):
                return False  # a nested query's column: that query answers for it
            source = scope.sources.get(col.table) if col.table else None
            if isinstance(source, exp.Table):
                if source.name in self.extracts:
                    return False  # the staging tables do not depend on parameters
                r = self.tables.get(source.name)
                return r is None or r.reaches(col.name)  # a table not known: reached
            if isinstance(source, Scope):
                return self._scope(source, memo).reaches(col.name)
            if not col.table and col.name in aliases:
                return aliases[col.name]  # `qualify rank = 1`: this select's own column
            return True  # unresolved: counted as reached

        def reached(node: exp.Expression | None) -> bool:
            if node is None:
                return False
            if any(p.name in self.values for p in node.find_all(exp.Placeholder)):
                return True
            if any(r.anything and _within(sub, node) for sub, r in nested):
                return True
            return any(column_reached(col) for col in node.find_all(exp.Column))

        for p in select.selects:
            aliases[p.alias_or_name] = reached(p)
        rows = any(
            self._scope(s, memo).rows if isinstance(s, Scope) else self._table_rows(s)
            for s in scope.sources.values()
        )
        clauses = [
            select.args.get(k)
            for k in ("where", "group", "having", "qualify", "order", "limit", "offset")
        ]
        distinct = select.args.get("distinct")
        clauses += [distinct.args.get("on")] if distinct is not None else []
        clauses += list(select.args.get("windows") or [])
        joins = select.args.get("joins") or []
        clauses += [j.args.get("on") for j in joins]
        if any(j.args.get("using") for j in joins):  # qualify writes USING as ON; if not, all
            rows = rows or any(
                self._scope(s, memo).anything if isinstance(s, Scope) else s.name in self.tables
                for s in scope.sources.values()
            )
        rows = rows or any(reached(c) for c in clauses)
        if select.args.get("distinct") and any(aliases.values()):
            rows = True
        if rows:
            return Reached(True, frozenset(aliases))
        return Reached(False, frozenset(n for n, r in aliases.items() if r))

    def _table_rows(self, table: exp.Table) -> bool:
        if table.name in self.extracts:
            return False
        r = self.tables.get(table.name)
        return r is None or r.rows  # a table not known: reached


# What the scopes above do not follow: a text holding one is reached whole. None of `sql/` and
# `rules/` holds one (tests/test_whatif.py checks), so this only guards what is written later.
_UNFOLLOWED = (exp.Columns, exp.Unnest, exp.Lateral, exp.Pivot, exp.TableFromRows)


def unfollowed(tree: exp.Expression) -> list[str]:
    """The constructs of a qualified text the analysis does not follow."""
    found = [type(n).__name__ for n in tree.find_all(*_UNFOLLOWED)]
    found += ["union by name" for u in tree.find_all(exp.Union) if u.args.get("by_name")]
    found += ["struct .*" for c in tree.find_all(exp.Column) if isinstance(c.this, exp.Star)]
    found += [
        "table function" for t in tree.find_all(exp.Table) if not isinstance(t.this, exp.Identifier)
    ]
    return found


def unfollowed_in_catalogue() -> dict[str, list[str]]:
    """Every model and rule text with something the analysis does not follow (none, today)."""
    from pipelines.policy.catalogue import catalogue

    texts = {m: _qualified(m) for m in facts.MODELS}
    texts |= {r.rule_id: _qualified(r.rule_id, r.sql) for r in catalogue()}
    return {name: found for name, tree in texts.items() if (found := unfollowed(tree))}


def _within(inner: exp.Expression, outer: exp.Expression) -> bool:
    node: exp.Expression | None = inner
    while node is not None:
        if node is outer:
            return True
        node = node.parent
    return False
