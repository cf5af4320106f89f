"""The portable subset of SQL the fact models and rules are written in, and its translation.

The SQL texts of `sql/` and `rules/catalogue/` are DuckDB's dialect, restricted to constructs
whose meaning is the same on every engine safetynet runs on, so that one text serves them all.
DuckDB runs them as they are; for another engine `translate` parses a text with sqlglot, expands
the macros of `sql/macros.sql` into it, rewrites the few constructs sqlglot does not carry over
with the same meaning, and writes the engine's dialect. A construct outside the subset is refused
(`NotPortable`), naming it, rather than translated into something that means another thing.

The subset (docs/policy.md, "One SQL text, two engines"):
- parameters only as `$name` (bound; never formatted into the text);
- JSON only as `json_object('key', value, …)`, `to_json(list(x order by k))` of such objects,
  the empty array `'[]'::json`, and `x::json` / `json_merge_patch(json_object(…), x)` where the
  evaluator puts a rule's evidence in: on Spark each is built as text, key by key, so the keys
  keep their order and each number is written as DuckDB writes it (`_scalar_text`);
- lists only ordered (`list(x order by k)`, ascending, by keys that order them fully; NULL keys
  last): an unordered list has no defined order;
- dates: `strftime`, `try_strptime(text, fmt)` with the layouts `%Y%m%d`, `%Y-%m-%d`, `%m%d`;
  whole years as `year(b) - year(a)` (never `date_diff`, whose units differ between engines);
- money shown as `format('{:,.2f}', x)` (Spark's `format_number(x, 2)`);
- no division (none is needed; an engine's integer division and division by zero differ);
- `list_contains`, `bool_or`, `any_value`, `count(*) filter (where …)`, `group by all`,
  `concat_ws`, `coalesce`, `case`, casts to the value types, window functions: the same on both.
"""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp

from pipelines.core.resources import sql_file

# strftime / strptime layouts of the subset -> Spark's datetime patterns
_LAYOUTS = {"%Y%m%d": "yyyyMMdd", "%Y-%m-%d": "yyyy-MM-dd", "%m%d": "MMdd"}
_JSON_OPTIONS = "map('ignoreNullFields', 'false')"


class NotPortable(ValueError):
    """A construct outside the portable subset."""


@functools.cache
def macros() -> dict[str, tuple[tuple[str, ...], exp.Expression]]:
    """`sql/macros.sql`: name -> (parameters, body)."""
    out = {}
    for tree in sqlglot.parse(sql_file("macros").read_text(encoding="utf-8"), read="duckdb"):
        if tree is None:
            continue
        if not (isinstance(tree, exp.Create) and str(tree.args.get("kind")).upper() == "MACRO"):
            raise NotPortable(f"macros.sql: not a macro: {tree.sql('duckdb')[:60]}")
        udf = tree.this
        params = tuple(p.name for p in udf.expressions)
        out[udf.this.name.lower()] = (params, tree.expression)
    return out


def expand_macros(tree: exp.Expression) -> exp.Expression:
    """Every call of a macro replaced by its body, the arguments put in (macros may call
    macros)."""
    known = macros()

    def inline(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() in known:
            params, body = known[node.name.lower()]
            args = node.expressions
            if len(args) != len(params):
                raise NotPortable(f"{node.name} takes {len(params)} arguments, not {len(args)}")
            values = dict(zip(params, args, strict=True))

            def put(n: exp.Expression) -> exp.Expression:
                if isinstance(n, exp.Column) and not n.table and n.name in values:
                    return exp.paren(values[n.name].copy(), copy=False)
                return n

            return expand_macros(body.copy().transform(put))
        return node

    return tree.transform(inline)


def _literal(node: exp.Expression, what: str) -> str:
    if not (isinstance(node, exp.Literal) and node.is_string):
        raise NotPortable(f"{what} must be a string literal, not {node.sql('duckdb')}")
    return node.this


def _layout(node: exp.Expression) -> str:
    layout = _literal(node, "a date layout")
    if layout not in _LAYOUTS:
        raise NotPortable(f"date layout {layout!r} is not one of {sorted(_LAYOUTS)}")
    return _LAYOUTS[layout]


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _sorted_list(agg: exp.ArrayAgg) -> exp.Expression:
    """`list(x order by k1, k2)` -> the array of x sorted by (k1, k2): Spark's collect_list has
    no order, so each x travels with its keys in a struct, sorted, then unwrapped."""
    inner = agg.this
    if not isinstance(inner, exp.Order):
        raise NotPortable(f"a list needs an order: {agg.sql('duckdb')}")
    keys = inner.expressions
    if any(k.args.get("desc") for k in keys):
        raise NotPortable(f"lists are ordered ascending only: {agg.sql('duckdb')}")
    if any(k.args.get("nulls_first") for k in keys):
        raise NotPortable(f"lists put NULL keys last: {agg.sql('duckdb')}")
    if isinstance(inner.this, exp.Distinct):
        raise NotPortable(f"list(distinct …) is not in the portable subset: {agg.sql('duckdb')}")
    if isinstance(agg.parent, exp.Filter):
        raise NotPortable(f"list(…) filter (where …) is not portable: {agg.parent.sql('duckdb')}")
    fields: list[exp.Expression] = []
    for i, key in enumerate(keys):  # NULLs last, as DuckDB orders them
        is_null = exp.Is(this=key.this.copy(), expression=exp.Null())
        fields += [exp.Literal.string(f"n{i}"), is_null, exp.Literal.string(f"k{i}"), key.this]
    fields += [exp.Literal.string("v"), inner.this]
    collected = _fn("array_sort", _fn("collect_list", _fn("named_struct", *fields)))
    element = exp.to_identifier("e")
    unwrap = exp.Lambda(
        this=exp.Dot(this=exp.column(element), expression=exp.to_identifier("v")),
        expressions=[element],
    )
    # a list of no rows is NULL in DuckDB, and collect_list's is empty
    empty = exp.EQ(this=_fn("size", collected.copy()), expression=exp.Literal.number(0))
    listed = exp.Case(
        ifs=[exp.If(this=empty, true=exp.Null())], default=_fn("transform", collected, unwrap)
    )
    listed.meta["list_value"] = inner.this
    return listed


# JSON is text on Spark as on DuckDB: an object or list is built as its text, from the text of
# each value, so the keys keep their order and nulls their place. A value that is JSON already (an
# object, a list, a column holding one) goes in as it is; a scalar as DuckDB writes it. DuckDB
# writes a scalar in one of two ways: as `json_object` does (a decimal with its scale, `1000.00`)
# or, where its JSON is parsed and written again — the elements of `to_json(list(...))` and the
# whole of `json_merge_patch`'s result — as a double (`1000.0`, `2410.7`). Which way a value is
# written is known from where it stands, so the translation marks those places ("reparsed").
JSON_COLUMNS = ("members", "listed", "evidence")


def _is_json(node: exp.Expression) -> bool:
    if isinstance(node, exp.Paren):
        return _is_json(node.this)
    if isinstance(node, exp.Column):
        return node.name in JSON_COLUMNS
    if isinstance(node, exp.Coalesce):
        return any(_is_json(a) for a in [node.this, *node.expressions])
    if isinstance(node, exp.Case):  # JSON when every branch that is not NULL is
        branches = [i.args["true"] for i in node.args.get("ifs", [])]
        if node.args.get("default") is not None:
            branches.append(node.args["default"])
        given = [b for b in branches if not isinstance(b, exp.Null)]
        return bool(given) and all(_is_json(b) for b in given)
    return bool(node.meta.get("json"))


def _json(node: exp.Expression) -> exp.Expression:
    node.meta["json"] = True
    return node


def _rx(text: exp.Expression, pattern: str, replacement: str) -> exp.Expression:
    return _fn("regexp_replace", text, exp.Literal.string(pattern), exp.Literal.string(replacement))


def _one() -> exp.Expression:
    return exp.Literal.number(1)


def _extract(text: exp.Expression, pattern: str) -> exp.Expression:
    """The first group of `pattern` in `text`, or NULL (not '')."""
    found = _fn("regexp_extract", text, exp.Literal.string(pattern), _one())
    return _fn("nullif", found, exp.Literal.string(""))


def _number(text: exp.Expression, to: str) -> exp.Expression:
    return exp.Cast(this=text, to=exp.DataType.build(to))


def _as_double(text: exp.Expression) -> exp.Expression:
    """A plain decimal's text as DuckDB writes the double it equals: `1000.00` -> `1000.0`,
    `2410.70` -> `2410.7`, `100000` -> `100000.0`."""
    return _rx(_rx(text, "([.][0-9]*?)0+$", "$1"), "^(-?[0-9]+)[.]?$", "$1.0")


def _plain(text: exp.Expression, places: int) -> exp.Expression:
    decimal = _number(text, f"decimal(38, {places})")
    return exp.Cast(this=decimal, to=exp.DataType.build("string"))


def _scalar_text(value: exp.Expression, reparsed: bool) -> exp.Expression:
    """A scalar's JSON text as DuckDB writes it. Spark's `to_json` of `{"v": value}`, cut to the
    value, is the same for text, booleans, integers, dates and most doubles; the rest is mended
    from the text and the value's type (`typeof`, which every type has):
    - a decimal of precision 15 or less DuckDB writes as a double (`1.0`, not `1`);
    - a decimal where DuckDB writes its JSON again (`reparsed`) is the double it is read back
      as, except one of scale 0, read back as an integer;
    - a double DuckDB writes plainly from 1e-6 to 1e21, and Java's `Double.toString` only from
      1e-3 to 1e7: `1.0E7` is made `10000000.0` (by way of an exact decimal); outside,
      `1.0E21` is made `1e21` and `1.5E-7` `1.5e-7`.
    Not mended: a decimal of more than 15 significant digits where DuckDB makes it a double
    (the double rounds it; Spark keeps every digit)."""
    wrapped = _to_text(_fn("named_struct", exp.Literal.string("v"), value))
    # `{"v":` … `}` cut off; `(?s)`: Java's `.` would not match U+2028 or U+0085 without it
    made = _fn("regexp_extract", wrapped, exp.Literal.string('(?s)^[{]"v":(.*)[}]$'), _one())
    # The text is made once and named (`json_text`, a lambda's variable) for the mending: a CASE
    # repeating it would have Spark generate code past the JVM's 64 KB method limit.
    text = exp.column(_TEXT)
    kind = _fn("typeof", value.copy())
    # casts only of texts that are numbers (ANSI casts raise on anything else)
    precision = _number(_extract(kind, "^decimal[(]([0-9]+),"), "int")
    exponent = _number(_extract(text.copy(), "^-?[0-9][.][0-9]+E(-?[0-9]+)$"), "int")
    in_range = exp.Between(this=exponent, low=exp.Literal.number(-6), high=exp.Literal.number(20))
    # Double.toString's digits (at most 17) as an exact decimal, written out: 30 places after
    # the point for a negative exponent (down to 1e-6), 17 for a positive one (up to 1e20)
    scientific = exp.Case(ifs=[exp.If(this=in_range, true=text.copy())])
    negative = exp.LT(this=exponent.copy(), expression=exp.Literal.number(0))
    plain = exp.Case(
        ifs=[exp.If(this=negative, true=_plain(scientific.copy(), 30))],
        default=_plain(scientific, 17),
    )
    ifs = [
        exp.If(this=in_range.copy(), true=_as_double(plain)),
        exp.If(
            this=exp.Not(this=exp.Is(this=exponent.copy(), expression=exp.Null())),
            true=_fn("lower", _rx(text.copy(), "[.]0E", "E")),
        ),
        exp.If(
            this=exp.LTE(this=precision, expression=exp.Literal.number(15)),
            true=_as_double(text.copy()),
        ),
    ]
    if reparsed:
        ifs.append(
            exp.If(
                this=exp.Like(this=kind.copy(), expression=exp.Literal.string("decimal%")),
                true=_rx(_rx(text.copy(), "([.][0-9]*?)0+$", "$1"), "[.]$", ".0"),
            )
        )
    mend = exp.Lambda(this=exp.Case(ifs=ifs, default=text.copy()), expressions=[_text_variable()])
    return _fn("element_at", _fn("transform", _fn("array", made), mend), _one())


_TEXT = "json_text"


def _text_variable() -> exp.Identifier:
    return exp.to_identifier(_TEXT)


def _value_text(value: exp.Expression, reparsed: bool, drop_nulls: bool) -> exp.Expression:
    """A value's JSON text; NULL where the key is to be left out (`drop_nulls`), else `null`."""
    if _is_json(value):  # a JSON column's NULL is JSON's null
        if drop_nulls:
            return value
        return exp.Coalesce(this=value, expressions=[exp.Literal.string("null")])
    text = _scalar_text(value, reparsed)
    return _fn("nullif", text, exp.Literal.string("null")) if drop_nulls else text


def _object_text(node: exp.JSONObject) -> exp.Expression:
    """`{` + the `"key":value` entries joined by commas + `}`; `concat_ws` leaves out an entry
    that is NULL, which is how a key whose value is null is left out where DuckDB drops it."""
    reparsed = bool(node.meta.get("reparsed"))
    drop_nulls = bool(node.meta.get("drop_nulls"))
    entries: list[exp.Expression] = [exp.Literal.string(",")]
    for pair in node.expressions:
        if not isinstance(pair, exp.JSONKeyValue):
            raise NotPortable(f"json_object takes key, value pairs: {node.sql('duckdb')}")
        key = _literal(pair.this, "a json_object key")
        text = _value_text(pair.expression, reparsed, drop_nulls)
        entries.append(_fn("concat", exp.Literal.string(f'"{key}":'), text))
    body = _fn("concat_ws", *entries)
    return _json(_fn("concat", exp.Literal.string("{"), body, exp.Literal.string("}")))


def _mark_reparsed(node: exp.Expression, merged: bool) -> None:
    """Every json_object below `node` is written again by DuckDB (its decimals as doubles); where
    it is `merged` (the patch of `json_merge_patch`) its keys whose value is null are dropped,
    except in an object inside a list (a merge patch replaces a list whole)."""
    for inner in node.find_all(exp.JSONObject):
        inner.meta["reparsed"] = True
        if merged and not _in_list(inner, node):
            inner.meta["drop_nulls"] = True


def _in_list(inner: exp.Expression, top: exp.Expression) -> bool:
    parent = inner.parent
    while parent is not None and parent is not top:
        if isinstance(parent, exp.ArrayAgg):
            return True
        parent = parent.parent
    return False


def _mark_reparsed_places(tree: exp.Expression) -> None:
    """Mark the json_objects DuckDB writes again: those inside `to_json(list(...))`, the target
    of a `json_merge_patch(target, evidence)`, and the objects of the `evidence` its subquery
    makes (the patch, whose null keys the merge drops); and an object inside an object (DuckDB
    reads the inner object's JSON to put it in the outer)."""
    for inner in tree.find_all(exp.JSONObject):
        if inner.find_ancestor(exp.JSONObject) is not None:
            inner.meta["reparsed"] = True
    for call in tree.find_all(exp.Anonymous):
        name = call.name.lower()
        if name == "to_json" and len(call.expressions) == 1:
            _mark_reparsed(call.expressions[0], merged=False)
        elif name == "json_merge_patch":
            _mark_reparsed(call.expressions[0], merged=False)
            select = call.find_ancestor(exp.Select)
            for source in select.find_all(exp.Subquery) if select else []:
                for projection in source.this.expressions:
                    if isinstance(projection, exp.Alias) and projection.alias == "evidence":
                        _mark_reparsed(projection.this, merged=True)
                        for column in projection.this.find_all(exp.Column):
                            if column.name == "evidence":
                                raise NotPortable("evidence is built once, not from evidence")


def _list_text(listed: exp.Expression) -> exp.Expression:
    """`to_json(list(<json> order by k))`: the texts sorted by their keys, joined."""
    value = listed.meta.get("list_value")
    if value is None:
        raise NotPortable("to_json takes an ordered list of json_object(...)")
    if not _is_json(value):
        raise NotPortable("to_json(list(...)) lists json_object(...) values only")
    joined = _fn("array_join", listed, exp.Literal.string(","), exp.Literal.string("null"))
    return _json(_fn("concat", exp.Literal.string("["), joined, exp.Literal.string("]")))


def _to_text(node: exp.Expression) -> exp.Expression:
    return _fn("to_json", node, sqlglot.parse_one(_JSON_OPTIONS, read="spark"))


def _spark(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.JSONObject):
        return _object_text(node)
    if isinstance(node, exp.ArrayAgg):
        return _sorted_list(node)
    if isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.JSON):
        if isinstance(node.this, exp.Literal) and node.this.this == "[]":
            return _json(exp.Literal.string("[]"))
        if not _is_json(node.this):
            raise NotPortable(f"only JSON is cast to JSON: {node.sql('duckdb')}")
        return node.this
    if isinstance(node, exp.Alias) and _is_json(node.this) and node.alias not in JSON_COLUMNS:
        raise NotPortable(f"a column holding JSON is named one of {JSON_COLUMNS}, not {node.alias}")
    if isinstance(node, exp.Format):
        if _literal(node.this, "a format") != "{:,.2f}" or len(node.expressions) != 1:
            raise NotPortable("format: only format('{:,.2f}', x) (money) is portable")
        return _fn("format_number", node.expressions[0], exp.Literal.number(2))
    if isinstance(node, exp.DateDiff):
        raise NotPortable("date_diff: use year(b) - year(a) and compare month and day")
    if isinstance(node, exp.Div | exp.IntDiv):
        raise NotPortable(f"division is not in the portable subset: {node.sql('duckdb')}")
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        args = node.expressions
        if name == "to_json" and len(args) == 1:
            return _list_text(args[0])
        if name == "json_merge_patch":
            target, patch = args
            if not (_is_json(target) and isinstance(target, exp.Anonymous)):
                raise NotPortable("json_merge_patch takes json_object(...) first")
            # the target's keys, then the patch's (which must not repeat them), whose nulls the
            # patch's own translation has left out already
            target_entries = target.expressions[1]  # concat('{', concat_ws(...), '}')
            patch_entries = _fn(
                "substring",
                patch,
                exp.Literal.number(2),
                exp.Sub(this=_fn("length", patch.copy()), expression=exp.Literal.number(2)),
            )
            return _json(
                _fn(
                    "concat",
                    exp.Literal.string("{"),
                    _fn(
                        "concat_ws",
                        exp.Literal.string(","),
                        _fn("nullif", target_entries, exp.Literal.string("")),
                        _fn("nullif", patch_entries, exp.Literal.string("")),
                    ),
                    exp.Literal.string("}"),
                )
            )
        if name == "try_strptime":
            text, layout = args
            return exp.Cast(
                this=_fn("try_to_timestamp", text, exp.Literal.string(_layout(layout))),
                to=exp.DataType.build("date"),
            )
        if name == "format":
            if _literal(args[0], "a format") != "{:,.2f}":
                raise NotPortable("format: only '{:,.2f}' (money) is portable")
            return _fn("format_number", args[1], exp.Literal.number(2))
    return node


@functools.lru_cache(maxsize=1024)
def translate(sql: str, dialect: str = "spark") -> str:
    """One statement of the portable subset, macros expanded, in `dialect` (Spark SQL); kept
    for the process's next quarter (the same ~60 texts every quarter, ~1 s to translate)."""
    if dialect != "spark":
        raise NotPortable(f"no translation to {dialect}")
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise NotPortable(f"does not parse as DuckDB SQL: {str(e).splitlines()[0]}") from None
    tree = expand_macros(tree)
    _mark_reparsed_places(tree)
    return _bottom_up(tree, _spark).sql(dialect="spark")


def _bottom_up(node: exp.Expression, fun) -> exp.Expression:
    """`fun` applied to every node, children first (sqlglot's `transform` goes top down and does
    not enter a node it replaced): a list of objects is an array of structs before it is
    sorted, an object inside an object a struct before its parent is."""
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _bottom_up(value, fun))
        elif isinstance(value, list):
            node.set(
                key, [_bottom_up(v, fun) if isinstance(v, exp.Expression) else v for v in value]
            )
    return fun(node)
