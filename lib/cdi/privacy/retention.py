"""Retention (``privacy.quarantine_raw_days``, ``privacy.bronze_versions_days``): raw text and
old versions of source rows are not kept longer than they are needed. ``cdi maintain`` applies
it before its VACUUM, which then deletes the files that held the values once they are older than
``storage.vacuum_retention_hours`` (``--retain-hours 0`` for at once).

- **Quarantine**: rows ingested before the cutoff keep their place, reason and counts, but lose
  ``_raw`` and ``_raw_bytes`` (the rejected text): nothing is lost from the count, the text is.
- **Bronze**: a source row ingested before the cutoff is removed when it is a superseded version:
  its record has a newer delivery, and it is neither the version silver uses (the newest by the
  source's update time) nor the latest delivered (what a snapshot source is compared with). Those
  two are kept whatever their age, so silver and the next ingest see what they saw before.
  Tombstones and records without a newer version stay.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from pyspark.sql import Window
from pyspark.sql import functions as F

from cdi import schema
from cdi.config import PrivacyConfig
from cdi.lake import Lake
from cdi.sql import literal

log = logging.getLogger(__name__)


def _cutoff(days: int, now: datetime) -> str:
    return f"{schema.INGESTED_AT} < {literal(now - timedelta(days=days))}"


def expire_quarantine_text(lake: Lake, days: int, now: datetime) -> int:
    """Null the raw text of quarantine rows ingested before ``now - days``; the rows cleared."""
    if not lake.exists(schema.QUARANTINE):
        return 0
    old = _cutoff(days, now)
    rows = lake.read(schema.QUARANTINE).where(old)
    holding = rows.where(F.col("_raw").isNotNull() | F.col("_raw_bytes").isNotNull()).count()
    if holding:
        cleared = rows.withColumn("_raw", F.lit(None).cast("string")).withColumn("_raw_bytes", F.lit(None).cast("binary"))
        lake.write(schema.QUARANTINE, cleared, mode="overwrite", replace_where=old, operation="RETENTION")
    return holding


def expire_bronze_versions(lake: Lake, table: str, days: int, now: datetime) -> int:
    """Remove superseded versions ingested before ``now - days`` from one bronze table (see the
    module doc); the rows removed."""
    bronze = lake.read(table)
    if schema.RECORD_ID not in bronze.columns:
        return 0
    source = table.split("/", 1)[1]
    used_parts = []
    if lake.exists(schema.RECORDS):
        records = lake.read(schema.RECORDS).where(F.col("source") == source)
        used_parts.append(records.select(F.col("source_record_id").alias("_rid"), F.col("_batch_id").alias("_bid")))
    if lake.exists(schema.FACTS):  # a fact names its own row by fact_key = <source>:<id>
        facts = lake.read(schema.FACTS).where(F.col("source") == source)
        used_parts.append(facts.select(F.expr("substring(fact_key, length(source) + 2)").alias("_rid"), F.col("_batch_id").alias("_bid")))
    if not used_parts:
        return 0  # what silver uses is unknown: keep everything
    used = used_parts[0] if len(used_parts) == 1 else used_parts[0].unionByName(used_parts[1])
    used = used.distinct().withColumn("_used", F.lit(True))
    old = _cutoff(days, now)
    newest = Window.partitionBy(schema.RECORD_ID).orderBy(F.col(schema.INGESTED_AT).desc(), F.col(schema.BATCH_ID).desc())
    ranked = bronze.withColumn("_rank", F.row_number().over(newest))
    marked = ranked.join(
        used, (ranked[schema.RECORD_ID] == used["_rid"]) & (ranked[schema.BATCH_ID] == used["_bid"]), "left"
    )
    superseded = F.expr(old) & (F.col("_rank") > 1) & F.col("_used").isNull()
    doomed = marked.where(superseded).count()
    if doomed:
        remaining = marked.where(F.expr(old) & ~superseded).select(*bronze.columns)
        lake.write(table, remaining, mode="overwrite", replace_where=old, operation="RETENTION")
    return doomed


def apply_retention(lake: Lake, privacy: PrivacyConfig, now: datetime | None = None) -> dict[str, int]:
    """Both expiries as configured; rows cleared or removed per table."""
    now = now or datetime.now(UTC)
    done: dict[str, int] = {}
    if privacy.quarantine_raw_days is not None:
        done[schema.QUARANTINE] = expire_quarantine_text(lake, privacy.quarantine_raw_days, now)
    if privacy.bronze_versions_days is not None:
        for table in lake.tables():
            if table.startswith("bronze/") and not table.startswith("bronze/_"):
                done[table] = expire_bronze_versions(lake, table, privacy.bronze_versions_days, now)
    for table, rows in done.items():
        if rows:
            log.info("retention: %s: %d row(s) %s", table, rows, "cleared of raw text" if table == schema.QUARANTINE else "removed")
    return done
