"""Data contracts: one ODCS v3 YAML file per extract in `data_contracts/`.

This module only reads them into plain objects; `checks.py` turns them into row checks and
`expectations.py` into Great Expectations suites, so both come from the same definitions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipelines.core.resources import CONTRACTS_DIR, read_yaml
from pipelines.core.valuetypes import DATE_LAYOUTS, VALUE_TYPES

KINDS = {"snapshot", "event"}


class ContractError(ValueError):
    """A contract file that does not follow docs/contracts.md."""


@dataclass(frozen=True)
class Rule:
    """One quality rule of a column or of the whole row (ODCS `quality[]`)."""

    id: str  # the quarantine reason it produces, e.g. `gender.codes`
    implementation: str  # `codes` for library invalidValues, else the custom implementation
    arguments: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Column:
    name: str
    value_type: str
    required: bool
    aliases: tuple[str, ...]
    restricted: bool  # personal data (identity number, name): never shown outside routed files
    rules: tuple[Rule, ...]
    business_name: str = ""
    description: str = ""

    @property
    def codes(self) -> tuple[str, ...] | None:
        for r in self.rules:
            if r.implementation == "codes":
                return tuple(r.arguments["validValues"])
        return None


@dataclass(frozen=True)
class Contract:
    department: str
    extract: str
    kind: str
    version: str
    date_formats: tuple[str, ...]
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    rules: tuple[Rule, ...]  # row-level rules spanning columns (schema `quality[]`)
    path: Path = field(compare=False)
    business_name: str = ""
    # whether more than `max_quarantine_share` of the rows quarantined fails the whole file
    # (extracts.md §2); not for feedback, whose answers each stand on their own (spec, Settled)
    weighs_quarantine_share: bool = True

    @property
    def name(self) -> str:
        return f"{self.department}.{self.extract}"

    @property
    def is_snapshot(self) -> bool:
        return self.kind == "snapshot"

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def header_map(self) -> dict[str, str]:
        """Accepted header (canonical name or alias) -> canonical column name."""
        out: dict[str, str] = {}
        for c in self.columns:
            for h in (c.name, *c.aliases):
                out[h.strip()] = c.name
        return out


def _custom(props: list[dict] | None) -> dict[str, Any]:
    return {p["property"]: p.get("value") for p in props or []}


def _rule(raw: dict, where: str) -> Rule:
    if raw.get("type") == "library" and raw.get("metric") == "invalidValues":
        impl = "codes"
        if not raw.get("arguments", {}).get("validValues"):
            raise ContractError(f"{where}: invalidValues needs arguments.validValues")
    elif raw.get("type") == "custom" and raw.get("engine") == "safetynet":
        impl = raw["implementation"]
    else:
        raise ContractError(f"{where}: unsupported quality rule {raw!r}")
    if not raw.get("id"):
        raise ContractError(f"{where}: every quality rule needs an id (its quarantine reason)")
    return Rule(raw["id"], impl, dict(raw.get("arguments") or {}), raw.get("description", ""))


def load_contract(path: Path) -> Contract:
    doc = read_yaml(path.read_text(encoding="utf-8"))
    where = path.name
    if doc.get("kind") != "DataContract" or not str(doc.get("apiVersion", "")).startswith("v3"):
        raise ContractError(f"{where}: not an ODCS v3 DataContract")
    meta = _custom(doc.get("customProperties"))
    kind = meta.get("kind")
    if kind not in KINDS:
        raise ContractError(f"{where}: customProperties.kind must be one of {sorted(KINDS)}")
    weighs_share = meta.get("maxQuarantineShareApplies", True)
    if not isinstance(weighs_share, bool):
        raise ContractError(
            f"{where}: customProperties.maxQuarantineShareApplies must be true/false"
        )
    date_formats = tuple(meta.get("dateFormats") or ["YYYY-MM-DD"])
    if not set(date_formats) <= DATE_LAYOUTS.keys():
        raise ContractError(f"{where}: dateFormats must be among {sorted(DATE_LAYOUTS)}")
    (obj,) = doc["schema"]
    columns = []
    keys: list[tuple[int, str]] = []
    for p in obj["properties"]:
        cp = _custom(p.get("customProperties"))
        vt = cp.get("valueType")
        if vt not in VALUE_TYPES:
            raise ContractError(f"{where}: column {p['name']}: valueType {vt!r} unknown")
        rules = tuple(_rule(r, f"{where}: column {p['name']}") for r in p.get("quality") or [])
        if vt == "code" and not any(r.implementation == "codes" for r in rules):
            raise ContractError(f"{where}: column {p['name']}: a code column needs its codes")
        columns.append(
            Column(
                name=p["name"],
                value_type=vt,
                required=bool(p.get("required", False)),
                aliases=tuple(cp.get("aliases") or []),
                restricted=p.get("classification") == "restricted",
                rules=rules,
                business_name=p.get("businessName", ""),
                description=p.get("description", ""),
            )
        )
        if p.get("primaryKey"):
            keys.append((int(p.get("primaryKeyPosition", 1)), p["name"]))
    if not keys:
        raise ContractError(f"{where}: no primary key")
    contract = Contract(
        department=meta.get("department") or doc["domain"],
        extract=meta.get("extract") or doc["dataProduct"],
        kind=kind,
        version=str(doc["version"]),
        date_formats=date_formats,
        columns=tuple(columns),
        primary_key=tuple(name for _, name in sorted(keys)),
        rules=tuple(_rule(r, f"{where}: schema") for r in obj.get("quality") or []),
        path=path,
        business_name=obj.get("businessName", ""),
        weighs_quarantine_share=weighs_share,
    )
    if path.name != f"{contract.name}.odcs.yaml":
        raise ContractError(f"{where}: file name must be {contract.name}.odcs.yaml")
    return contract


@functools.cache
def all_contracts(directory: Path = CONTRACTS_DIR) -> dict[tuple[str, str], Contract]:
    """(department, extract) -> contract. The feedback contract is keyed ('any', 'feedback')."""
    out = {}
    for path in sorted(directory.glob("*.odcs.yaml")):
        c = load_contract(path)
        out[(c.department, c.extract)] = c
    return out


def extract_contracts() -> list[Contract]:
    """The department extracts of extracts.md §3, in department order (not feedback)."""
    return [c for (dept, _), c in all_contracts().items() if dept != "any"]


def feedback_contract() -> Contract:
    return all_contracts()[("any", "feedback")]


def as_sent_by(contract: Contract, department: str) -> Contract:
    """The contract as one department's file is read. extracts.md §2: "`mps` and `mca` also send
    `YYYYMMDD`" — a habit of the department, so it holds for every file it sends, the feedback
    (contract department `any`) included. Which departments those are is read off their own
    contracts, not listed here."""
    if contract.department == department:
        return contract
    compact = {c.department for c in extract_contracts() if set(c.date_formats) > {"YYYY-MM-DD"}}
    if department in compact and "YYYYMMDD" not in contract.date_formats:
        return replace(contract, date_formats=(*contract.date_formats, "YYYYMMDD"))
    return contract
