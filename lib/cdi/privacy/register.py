"""The erasure register: salted hashes of what was erased, so that it stays erased.

A value is never stored, only ``sha256(salt | kind | value)``, where the salt is derived from the
configured secret (``privacy.hash_key``) so that the secret itself never reaches a Spark plan. A
row that a source delivers again after its person was erased is recognised by the hash of its
record key (``<source>:<id>``) and quarantined with reason ``erased``, without its raw text.

    >>> s = salt("0123456789abcdef")
    >>> digest(s, "record", "crm:C1") == digest(s, "record", "crm:C1") != digest(s, "record", "crm:C2")
    True
"""

from __future__ import annotations

import hashlib
import hmac

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdi import schema
from cdi.errors import ConfigError
from cdi.lake import Lake

RECORD, EMAIL, NATIONAL_ID = "record", "email", "national_id"
ERASED_REASON_CODE = "erased"
EMAIL_TOKEN = r"[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}"  # an address in lower-cased raw text
_SEP = "\x1f"


def salt(hash_key: str) -> str:
    """The register's salt: an HMAC of a fixed label under the secret (hex)."""
    return hmac.new(hash_key.encode("utf-8"), b"cdi erasure register", hashlib.sha256).hexdigest()


def digest(salt_hex: str, kind: str, value: str) -> str:
    return hashlib.sha256(f"{salt_hex}{_SEP}{kind}{_SEP}{value}".encode()).hexdigest()


def digest_column(salt_hex: str, kind: str, value: Column) -> Column:
    """:func:`digest` as a Spark column (UTF-8, like Python's)."""
    return F.sha2(F.concat(F.lit(f"{salt_hex}{_SEP}{kind}{_SEP}"), value), 256)


def require_key(hash_key: str | None) -> str:
    if not hash_key:
        raise ConfigError(
            "privacy.hash_key is not set: erasure keeps salted hashes of what it erased, and needs the "
            "secret that salts them; add `privacy: {hash_key: ${CDI_HASH_KEY}}` to the config and export "
            "CDI_HASH_KEY (16+ characters, the same for every run of this lake)"
        )
    return hash_key


def erased_hashes(lake: Lake, hash_key: str | None, kind: str = RECORD) -> tuple[str, DataFrame] | None:
    """The salt and the register's hashes of ``kind`` (column ``_erased_hash``), or None when
    nothing was ever erased. A lake with a register cannot be read without the key."""
    if not lake.exists(schema.ERASURE_REGISTER):
        return None
    s = salt(require_key(hash_key))
    hashes = lake.read(schema.ERASURE_REGISTER).where(F.col("kind") == kind).select(F.col("hash").alias("_erased_hash"))
    return s, hashes.distinct()


def erased_email_hashes(lake: Lake) -> set[str]:
    """The register's e-mail hashes (one per erased address: small, read once per batch)."""
    rows = lake.read(schema.ERASURE_REGISTER).where(F.col("kind") == EMAIL).select("hash").distinct().collect()
    return {r[0] for r in rows}


def erased_reason() -> Column:
    return F.lit(f"{ERASED_REASON_CODE}: the person this record belongs to was erased (cdi erase); it is not ingested again")
