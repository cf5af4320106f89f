"""Where the product's own data lie: `data_contracts/`, `rules/` and `sql/`, the lifecycle's
comparison (`pipelines/publish/lifecycle.sql`, package data of `pipelines.publish`), and the Data
Docs' vendored scripts and styles (`pipelines/gate/datadocs_static/`, package data of
`pipelines.gate`).

They stay at the top of the repository, where the province edits them, and ship inside
the package: `pyproject.toml` maps them to `pipelines/_data/` in a wheel, so `pip install .`
carries them. A checkout (or an editable install) reads them where they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_PACKAGE = Path(__file__).resolve().parent.parent
_INSTALLED = _PACKAGE / "_data"  # in a wheel (pyproject.toml, [tool.setuptools.package-dir])
_CHECKOUT = _PACKAGE.parent  # the repository root


def _folder(name: str) -> Path:
    for root in (_INSTALLED, _CHECKOUT):
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(
        f"safetynet's {name}/ folder is neither in the installed package ({_INSTALLED}) nor in "
        f"the checkout ({_CHECKOUT}); reinstall the package"
    )


CONTRACTS_DIR = _folder("data_contracts")
RULES_DIR = _folder("rules")
SQL_DIR = _folder("sql")
CATALOGUE_DIR = RULES_DIR / "catalogue"
PARAMETERS_DIR = RULES_DIR / "parameters"
# publishing's, not a fact model of the policy: beside the module that runs it
LIFECYCLE_SQL = _PACKAGE / "publish" / "lifecycle.sql"
DATADOCS_STATIC_DIR = _PACKAGE / "gate" / "datadocs_static"
DATADOCS_MANIFEST = DATADOCS_STATIC_DIR / "vendor.json"  # the npm packages and their files


def sql_file(model: str) -> Path:
    """`sql/<model>.sql`: one fact model (or the shared macros) per file."""
    return SQL_DIR / f"{model}.sql"


# libyaml's parser where PyYAML was built with it (the wheels are): the same safe constructors,
# several times faster over the contracts, parameters and rules every run reads first
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(text: str) -> Any:
    """A product file's YAML, as `yaml.safe_load` reads it."""
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
