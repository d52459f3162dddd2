"""What the lake enforces on the contract tables when it creates them: the columns that must
never be null (a Delta CHECK constraint) and which tables keep a Change Data Feed.

Downstream consumers read ``gold/golden_records`` and ``silver/entity_map`` changes with
``table_changes`` / ``readChangeFeed`` (or :meth:`cdi.lake.Lake.changes`); a row without its key
would be unusable to every one of them, so the table refuses it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from cdi.sql import identifier


@dataclass(frozen=True)
class TableContract:
    not_null: tuple[str, ...] = ()
    change_feed: bool = False

    def check(self) -> str | None:
        """The CHECK expression for :attr:`not_null`, or None."""
        if not self.not_null:
            return None
        return " AND ".join(f"{identifier(c)} IS NOT NULL" for c in self.not_null)


CONTRACTS: dict[str, TableContract] = {
    "bronze/_quarantine": TableContract(not_null=("_source", "_batch_id", "_reason")),
    "bronze/_*": TableContract(),
    "bronze/*": TableContract(not_null=("_source", "_source_record_id", "_batch_id", "_row_hash")),
    "silver/records": TableContract(not_null=("record_key", "source", "source_record_id")),
    "silver/facts": TableContract(not_null=("fact_key", "source", "kind")),
    "silver/pairs": TableContract(not_null=("record_key_l", "record_key_r")),
    "silver/entity_map": TableContract(not_null=("record_key", "source", "customer_id"), change_feed=True),
    "silver/id_history": TableContract(not_null=("event_type", "customer_id", "run_id")),
    "gold/golden_records": TableContract(not_null=("customer_id", "valid_from", "is_current"), change_feed=True),
    "gold/changes": TableContract(not_null=("customer_id", "change_type", "run_id")),
    "gold/life_events": TableContract(not_null=("customer_id", "event_type")),
    "gold/customer_360": TableContract(not_null=("customer_id",)),
}


def contract_for(table: str) -> TableContract | None:
    """The first contract whose pattern matches ``table`` (exact names before wildcards)."""
    if table in CONTRACTS:
        return CONTRACTS[table]
    for pattern, contract in CONTRACTS.items():
        if "*" in pattern and fnmatch.fnmatchcase(table, pattern) and "/" not in table[len(pattern) - 1 :]:
            return contract
    return None


def constraint_name(table: str) -> str:
    """One CHECK constraint per table, named after it (``silver_entity_map_keys``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", table).strip("_").lower() + "_keys"
