"""Sensitive attributes leave the lake masked: in the outbox and the PostgreSQL target (and any
other copy made for people outside the pipeline) a national id is ``*******6458`` (``partial``:
the last four characters, enough for a clerk to confirm with the customer) or a token
(``token``: ``tok_`` + a keyed hash under a secret from the environment, the same for the same
value, so systems downstream can still join on it without holding the value).

    >>> from pyspark.sql import functions as F  # doctest: +SKIP
    >>> masked(F.col("national_id"), "partial")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac

from pyspark.sql import Column
from pyspark.sql import functions as F

PARTIAL, TOKEN, NONE = "partial", "token", "none"
_SHOWN = 4


def token_salt(token_key: str) -> str:
    """The salt tokens are made with: an HMAC of a fixed label under the secret (hex), so the
    secret itself never reaches a Spark plan."""
    return hmac.new(token_key.encode("utf-8"), b"cdi masking token", hashlib.sha256).hexdigest()


def token(salt_hex: str, value: str) -> str:
    """:func:`masked` with ``token`` for one value, in Python (for lookups from outside Spark)."""
    return "tok_" + hashlib.sha256(f"{salt_hex}\x1f{value}".encode()).hexdigest()[:32]


def masked(value: Column, method: str, salt_hex: str | None = None) -> Column:
    """``value`` (a string column) as ``method`` masks it; null stays null."""
    if method == NONE:
        return value
    if method == TOKEN:
        if not salt_hex:
            raise ValueError("token masking needs a salt (propagation.token_key)")
        return F.when(value.isNotNull(), F.concat(F.lit("tok_"), F.substring(F.sha2(F.concat(F.lit(f"{salt_hex}\x1f"), value), 256), 1, 32)))
    if method != PARTIAL:
        raise ValueError(f"unknown masking {method!r}")
    stars = F.repeat(F.lit("*"), F.greatest(F.length(value) - _SHOWN, F.lit(0)))
    shown = F.concat(stars, F.substring(value, -_SHOWN, _SHOWN))
    return F.when(F.length(value) > _SHOWN + 2, shown).otherwise(F.repeat(F.lit("*"), F.length(value)))
