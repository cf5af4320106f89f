"""The shape of the house (docs/architecture.md): a folder per stage, importing only the core and
the stage before it, with no import circle and no module reached through another's imports; one
module naming every path; Great Expectations imported by the gate's GE modules only, through its
public API or a private name listed below; no environment read, private Dagster import (one, named
below), `assert`, swallowed exception or mutable module state in the product's code."""

from __future__ import annotations

import ast
import functools
import importlib
from pathlib import Path

import pytest

from pipelines.gate import kinds

PACKAGE = Path(__file__).resolve().parent.parent / "pipelines"
MODULES = sorted(PACKAGE.rglob("*.py"))
BENCH = sorted((PACKAGE.parent / "bench").glob("*.py"))
# what each folder may import from the package, besides itself (docs/architecture.md)
ALLOWED = {
    "core": set(),
    "gate": {"core"},
    "policy": {"core", "gate.accounting"},  # the gate's results, through its accounting files
    # the policy's output schemas, and its engine for the lifecycle's comparison
    "publish": {"core", "policy.evaluate", "policy.catalogue", "policy.engine"},
    "generate": {"core", "gate.kinds", "gate.checks", "policy.catalogue"},
    "orchestration": {"core", "gate", "policy", "publish", "generate"},
}
LAYOUT = {PACKAGE / "core" / "layout.py", PACKAGE / "core" / "resources.py"}
READS_ENVIRONMENT = {
    PACKAGE / "orchestration" / "resources.py",
    PACKAGE / "orchestration" / "demo.py",
    PACKAGE / "core" / "faults.py",  # the crash point a test arms (tests/test_faults.py)
}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def _imports(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [f"{node.module}.{a.name}" for a in node.names]
    return found


def _module(path: Path) -> str:
    """`pipelines/gate/stage.py` -> `pipelines.gate.stage`; a package's `__init__.py` is the
    package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


NAMES = {_module(p): p for p in MODULES}


def _imported(path: Path) -> set[str]:
    """The package's modules `path` imports anywhere (a function's imports too): each module
    named, and the packages whose `__init__` importing it runs first (not the importer's own,
    which already ran)."""
    importer = _module(path)
    found = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            named = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package, `level - 1` up
                package = importer.split(".")
                package = package if path.name == "__init__.py" else package[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([base] if base else [])])
            named = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in NAMES else base for a in node.names
            ]
        else:
            continue
        for name in named:
            if name in NAMES and name != importer:
                found.add(name)
            parts = name.split(".")
            for package in (".".join(parts[:i]) for i in range(1, len(parts))):
                if package in NAMES and not (importer + ".").startswith(package + "."):
                    found.add(package)
    return found


def _shortest_circle(graph: dict[str, set[str]], start: str) -> tuple[str, ...] | None:
    paths = {start: (start,)}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for following in sorted(graph[node]):
            if following == start:
                return paths[node]
            if following not in paths:
                paths[following] = (*paths[node], following)
                queue.append(following)
    return None


def test_no_import_circle_among_the_packages_modules():
    """A module that imports, through any chain and even inside a function, a module that
    imports it back is a circle: neither can be read, tested or moved without the other."""
    graph = {name: _imported(path) for name, path in NAMES.items()}
    circles = set()
    for start in graph:
        circle = _shortest_circle(graph, start)
        if circle:
            first = circle.index(min(circle))  # one spelling per circle, from its first name
            turned = (*circle[first:], *circle[:first])
            circles.add(" -> ".join((*turned, turned[0])))
    assert sorted(circles) == []


def _statements(body: list[ast.stmt]):
    """A module's top-level statements, with those under its top-level `if`, `try` and `with`."""
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.Try | ast.With):
            for inner in (node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])):
                yield from _statements(inner)
            for handler in getattr(node, "handlers", []):
                yield from _statements(handler.body)


@functools.cache
def _modules_imported_at_top(name: str) -> dict[str, str]:
    """The names a module of the package binds at its top level to a module it imports (not to
    one of its own submodules) -> that module."""
    bound = {}
    for node in _statements(_tree(NAMES[name]).body):
        if isinstance(node, ast.Import):
            for a in node.names:
                bound[a.asname or a.name.split(".")[0]] = (
                    a.name if a.asname else a.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                if f"{node.module}.{a.name}" in NAMES:
                    bound[a.asname or a.name] = f"{node.module}.{a.name}"
    return {k: v for k, v in bound.items() if f"{name}.{k}" not in NAMES}


def test_no_module_is_reached_through_another_modules_imports():
    """`from pipelines.gate import stage as gate` and then `gate.accounting.reconciliation_text`
    reads `accounting` through what `stage` happens to import: when `stage` stops importing it,
    the reader breaks, and the reader's imports do not say what it uses. A module of the package
    or of the benchmarks imports what it uses from the module that defines it."""
    reached = []
    for path in [*MODULES, *BENCH]:
        tree = _tree(path)
        aliases = {}  # names bound, anywhere in the file, to a module of the package
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases |= {a.asname: a.name for a in node.names if a.asname and a.name in NAMES}
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    if f"{node.module}.{a.name}" in NAMES:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        where = path.relative_to(PACKAGE.parent).as_posix()
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr in _modules_imported_at_top(aliases[node.value.id])
            ):
                reached.append(f"{where}:{node.lineno}: {node.value.id}.{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module in NAMES:
                through = _modules_imported_at_top(node.module)
                reached += [
                    f"{where}:{node.lineno}: from {node.module} import {a.name}"
                    for a in node.names
                    if a.name in through
                ]
    assert reached == []


@pytest.mark.parametrize("stage", ["gate", "policy", "publish"])
def test_each_stage_opens_saying_what_comes_in_and_what_goes_out(stage):
    doc = ast.get_docstring(_tree(PACKAGE / stage / "__init__.py")) or ""
    assert "In:" in doc and "Out:" in doc, stage
    for module in sorted((PACKAGE / stage).glob("*.py")):
        assert ast.get_docstring(_tree(module)), _name(module)


def test_a_stage_imports_only_the_core_and_the_outputs_of_the_stage_before_it():
    wrong = []
    for path in MODULES:
        parts = path.relative_to(PACKAGE).parts
        folder = parts[0] if len(parts) > 1 else None
        for name in _imports(_tree(path)):
            if name.startswith("dagster") and folder != "orchestration":
                wrong.append(f"{_name(path)} imports {name}: Dagster is the orchestration's")
            if not name.startswith("pipelines.") or folder is None:
                continue
            target = name.removeprefix("pipelines.")
            if target.split(".")[0] == folder:
                continue
            allowed = ALLOWED[folder]
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                wrong.append(f"{_name(path)} imports {name}")
    assert wrong == []


def test_one_module_spells_the_paths():
    """A string as an operand of `/`, or a literal path given to `Path`, is a path spelled: only
    `core/layout.py` (and `core/resources.py`, for the packaged data) spell them."""
    spelled = []
    for path in MODULES:
        if path in LAYOUT:
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                for side in (node.left, node.right):
                    if isinstance(side, ast.JoinedStr) or (
                        isinstance(side, ast.Constant) and isinstance(side.value, str)
                    ):
                        spelled.append(f"{_name(path)}:{node.lineno}: {ast.unparse(node)}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Path"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                spelled.append(f"{_name(path)}:{node.lineno}: {ast.unparse(node)}")
    assert spelled == []


def test_the_environment_is_read_by_the_command_line_and_the_resources_only():
    readers = []
    for path in MODULES:
        if path in READS_ENVIRONMENT:
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.append(f"{_name(path)}:{node.lineno}")
    assert readers == []


def test_no_private_dagster_module_assert_or_swallowed_exception():
    found = []
    for path in MODULES:
        tree = _tree(path)
        found += [
            f"{_name(path)} imports {n}"
            for n in _imports(tree)
            if n.startswith("dagster._") and (path, n) not in PRIVATE_DAGSTER
        ]
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                found.append(f"{_name(path)}:{node.lineno}: assert")
            if isinstance(node, ast.ExceptHandler):
                body = node.body
                silent = all(
                    isinstance(s, ast.Pass | ast.Continue)
                    or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
                    or (isinstance(s, ast.Return) and s.value is None)
                    for s in body
                )
                if silent:
                    found.append(f"{_name(path)}:{node.lineno}: exception swallowed")
            if isinstance(node, ast.keyword) and node.arg == "ignore_errors":
                found.append(f"{_name(path)}:{node.lineno}: ignore_errors")
    assert found == []


# the one private Dagster import: its SQLite event log, public but importable only from there,
# subclassed to pool its connections (orchestration/instance.py; tests/test_operations.py checks
# the pooling, so a Dagster that renames what is overridden fails there)
PRIVATE_DAGSTER = {
    (
        PACKAGE / "orchestration" / "instance.py",
        "dagster._core.storage.event_log.ConsolidatedSqliteEventLogStorage",
    )
}
# Great Expectations is imported by these modules of the gate only: the contract as a suite, its
# custom expectations, the Data Docs, and GE's workarounds (gx_deferred names GE but imports none)
GE_MODULES = {
    PACKAGE / "gate" / f"{name}.py"
    for name in ("expectations", "custom_expectations", "datadocs", "gx_patches", "gx_store")
}
# GE's public API: the two modules its documentation imports from (`import great_expectations as
# gx`, `import great_expectations.expectations as gxe`) and every name in them, and any class or
# function GE tags `@public_api`, which is what its API reference
# (https://docs.greatexpectations.io/docs/reference/api/) is generated from: the tag heads its
# docstring (great_expectations/_docs_decorators.py).
_GE = "great_expectations"
PUBLIC_GE_MODULES = {_GE, "great_expectations.expectations"}
PUBLIC_GE_TAG = "--Public API--"
# GE's private names imported, each for a reason; a GE upgrade is checked against them (and
# gx_patches.WORKAROUNDS against its digests, tests/test_gx_patches.py)
_GATE = PACKAGE / "gate"
PRIVATE_GE = {
    # the custom expectations: GE documents subclassing its expectations, but the map
    # expectations and metric providers they are built on are not in its API reference
    (_GATE / "custom_expectations.py", "great_expectations.execution_engine.PandasExecutionEngine"),
    (
        _GATE / "custom_expectations.py",
        "great_expectations.expectations.expectation.ColumnMapExpectation",
    ),
    (
        _GATE / "custom_expectations.py",
        "great_expectations.expectations.expectation.MulticolumnMapExpectation",
    ),
    (
        _GATE / "custom_expectations.py",
        "great_expectations.expectations.metrics.map_metric_provider.ColumnMapMetricProvider",
    ),
    (
        _GATE / "custom_expectations.py",
        "great_expectations.expectations.metrics.map_metric_provider.MulticolumnMapMetricProvider",
    ),
    (
        _GATE / "custom_expectations.py",
        "great_expectations.expectations.metrics.map_metric_provider.column_condition_partial",
    ),
    (
        _GATE / "custom_expectations.py",
        "great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial",
    ),
    # the Validator that ValidationDefinition.run runs, run directly so that only a scrubbed
    # result is stored (gx_patches.WORKAROUNDS)
    (_GATE / "expectations.py", "great_expectations.validator.v1_validator.Validator"),
    # GE's views, subclassed to put the offline loader in front of their templates
    (_GATE / "datadocs.py", "great_expectations.render.view.DefaultJinjaPageView"),
    (_GATE / "datadocs.py", "great_expectations.render.view.DefaultJinjaIndexPageView"),
    # patched for a validation's speed, each tested against GE's own (gx_patches)
    (_GATE / "gx_patches.py", "great_expectations.core.id_dict.IDDict"),
    (_GATE / "gx_patches.py", "great_expectations.execution_engine.pandas_execution_engine"),
    (
        _GATE / "gx_patches.py",
        "great_expectations.expectations.expectation_configuration.ExpectationConfiguration",
    ),
    # the project's progress bars switched off: GE's project variables take this type
    (_GATE / "gx_store.py", "great_expectations.data_context.types.base.ProgressBarsConfig"),
    # the suite's key in the results store, to store a result under its key (gx_store)
    (
        _GATE / "gx_store.py",
        "great_expectations.data_context.types.resource_identifiers.ExpectationSuiteIdentifier",
    ),
    # the statistics of the batches' results merged into one (gx_store.MergedResult)
    (_GATE / "gx_store.py", "great_expectations.validator.validator.calc_validation_statistics"),
}


def _ge_imports(tree: ast.Module) -> list[tuple[str, str | None]]:
    """(module, name) of each import from Great Expectations; name None for a module imported."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.split(".")[0] == _GE]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == _GE:
            found += [(node.module, a.name) for a in node.names]
    return found


def _public_ge(module: str, name: str | None) -> bool:
    if module in PUBLIC_GE_MODULES:
        return True
    if name is None:
        return False
    imported = getattr(importlib.import_module(module), name)
    return (getattr(imported, "__doc__", None) or "").startswith(PUBLIC_GE_TAG)


def test_great_expectations_is_imported_by_the_gates_ge_modules_through_its_public_api():
    """Only the GE modules of the gate import Great Expectations, and only its public API or a
    private name listed, with its reason, in `PRIVATE_GE`; every name listed is imported."""
    found, private = [], set()
    for path in MODULES:
        for module, name in _ge_imports(_tree(path)):
            imported = module if name is None else f"{module}.{name}"
            if path not in GE_MODULES:
                found.append(f"{_name(path)} imports {imported}: only {sorted(GE_MODULES)} may")
            elif not _public_ge(module, name):
                private.add((path, imported))
    assert found == []
    assert sorted(private - PRIVATE_GE) == [], "GE's private names imported and not listed"
    assert sorted(PRIVATE_GE - private) == [], "listed as imported and not imported"


_MUTATORS = {"append", "extend", "add", "update", "clear", "pop", "remove", "setdefault", "insert"}


def test_no_module_level_state_is_changed_by_a_function():
    """Module-level names are constants: no function rebinds one (`global`) or changes the
    container it names. The one exception is `kinds.register`, which fills the registry of
    check kinds as the module is imported."""
    changed = []
    for path in MODULES:
        tree = _tree(path)
        top = {
            t.id
            for node in tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign)
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name)
        }
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef) or func.name == "register":
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Global):
                    changed.append(f"{_name(path)}:{node.lineno}: global {node.names}")
                target = None
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    if node.func.attr in _MUTATORS:
                        target = node.func.value
                elif isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
                    targets = (
                        node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
                    )
                    target = next((t.value for t in targets if isinstance(t, ast.Subscript)), None)
                if isinstance(target, ast.Name) and target.id in top:
                    changed.append(f"{_name(path)}:{node.lineno}: {target.id} changed")
    assert changed == []


def test_every_check_kind_gives_every_part_and_a_new_one_cannot_forget_one():
    for name, kind in kinds.KINDS.items():
        assert kind.name == name and kind.arises in (
            "required",
            "value_type",
            "column_rule",
            "row_rule",
            "key",
        )
    assert {k.arises for k in kinds.KINDS.values()} == {
        "required",
        "value_type",
        "column_rule",
        "row_rule",
        "key",
    }

    class Forgetful(kinds.Kind):  # no plant
        name = "forgetful"
        arises = "column_rule"

        def expected(self, contract, column, a, ctx):
            return "x"

        def failure(self, check, contract, ctx):
            raise NotImplementedError

        def expectation(self, check, contract, *, settled):
            return None

    with pytest.raises(TypeError, match="plant"):
        kinds.register(Forgetful)
    assert "forgetful" not in kinds.KINDS


def test_every_cache_is_named_in_the_architecture_page():
    """docs/architecture.md, "Module state", names every cached function of the package: a cache
    is module state, and a reader must find all of it in one place."""
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = page[page.index("**Module state.**") : page.index("## The seams")]
    caches = []
    for path in MODULES:
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                called = decorator.func if isinstance(decorator, ast.Call) else decorator
                if ast.unparse(called).split(".")[-1] in ("cache", "lru_cache", "cached_property"):
                    caches.append(f"{path.stem}.{node.name}")
    assert caches and [c for c in caches if f"`{c}`" not in named] == []


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_a_folders_opening_names_every_module_in_it(folder):
    """Each folder's `__init__` lists its modules: a reader finds every room from the door."""
    doc = ast.get_docstring(_tree(PACKAGE / folder / "__init__.py")) or ""
    modules = sorted(p.stem for p in (PACKAGE / folder).glob("*.py") if p.stem != "__init__")
    assert [m for m in modules if f"`{m}`" not in doc] == []
