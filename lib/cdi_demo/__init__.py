"""cdi_demo: a seeded demo customer universe (persons, six source systems, facts) with ground
truth, for end-to-end runs and for scoring entity resolution.

    from cdi_demo import generate
    manifest = generate(persons=10_000, seed=42, out="data/demo")
"""

from cdi_demo.corruption import DEFAULT_RATES, KINDS
from cdi_demo.generator import GENERATOR_VERSION, SOURCES, generate, merged_rates


def load_crm_into_postgres(dsn: str, csv_path, table: str = "crm_contacts") -> dict:
    """Load crm/contacts.csv into PostgreSQL (see :mod:`cdi_demo.postgres_loader`)."""
    from cdi_demo.postgres_loader import load_crm_into_postgres as _load

    return _load(dsn, csv_path, table=table)


__all__ = [
    "DEFAULT_RATES",
    "GENERATOR_VERSION",
    "KINDS",
    "SOURCES",
    "generate",
    "load_crm_into_postgres",
    "merged_rates",
]
