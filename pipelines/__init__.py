"""safetynet: quarterly cross-department monitoring of the low-income population."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_ROOT / "data_contracts"
RULES_DIR = PROJECT_ROOT / "rules"
SQL_DIR = PROJECT_ROOT / "sql"
