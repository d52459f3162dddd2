"""The bronze stage: ingest every configured source into ``bronze/<source>``, losing nothing.

For each source, in configuration order:

1. rows of batches that never committed (a crashed run) are removed (:mod:`cdi.bronze.ledger`);
2. the reader returns the rows not yet ingested (new files, a new table version, the rows past
   the JDBC watermark); nothing new -> ``up_to_date``;
3. every row is checked (:mod:`cdi.bronze.validation`) and gets its lineage
   (:mod:`cdi.bronze.lineage`); a good row equal to its record's current bronze version is
   ``unchanged`` and not written again (:mod:`cdi.bronze.snapshots`); JDBC and Delta sources
   also skip rows already rejected into quarantine;
4. one cached pass counts rows per file, outcome and reason; the drift check and the quarantine
   limit run on those counts, before anything is written; a ``load: snapshot`` source's live
   records the batch lacks are deletions, checked against ``max_delete_share``;
5. good rows and the deletions' tombstones are appended to ``bronze/<source>`` (new columns added), rejected rows to
   ``bronze/_quarantine``; what the two commits hold (their files' row statistics, or a count
   back from the tables where those are missing) must satisfy ``read = bronze + quarantined +
   unchanged``;
6. the ledger row(s) are written: the batch's commit point.

A failing source (missing column, too many rejects, unreachable database, an unreadable file, a
full disk) does not stop the others; the stage raises :class:`IngestError` at the end naming
every failed source. Its first and last lines state a reason; an I/O failure names the step
(reading the source, writing a table), the file or table path, the root cause and what to do
(:class:`SourceIOError` for reads, :class:`StorageIOError` for writes).

    >>> results = run_ingest(spark, cfg, lake, run_id="r1")  # doctest: +SKIP
    >>> print(format_results(results))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark import StorageLevel
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi import schema
from cdi.config import CdiConfig, SourceConfig
from cdi.errors import (
    CdiError,
    CountIdentityError,
    IngestError,
    QuarantineLimitError,
    SnapshotDeleteLimitError,
    SourceIOError,
    SourceReadError,
    SourceSchemaError,
    StorageIOError,
    io_hint,
    one_line_text,
    root_cause,
)
from cdi.lake import Lake, SchemaMismatchError, WriteResult
from cdi.privacy.register import EMAIL_TOKEN, ERASED_REASON_CODE, digest_column, erased_email_hashes, erased_hashes, erased_reason
from cdi.progress import RunSummary
from cdi.sql import identifier

from . import lineage as L
from . import snapshots as S
from .drift import check_required_columns, new_columns
from .files import list_files, local_path
from .ledger import LEDGER_TABLE, QUARANTINE_TABLE, IngestLedger
from .quarantine import ensure_quarantine_table, quarantine_rows, write_quarantine
from .readers import SourceBatch, read_source
from .validation import REASON, classify, duplicate_id_reason, reason_code

log = logging.getLogger(__name__)

OUTCOME = "_outcome"
BRONZE, QUARANTINE, UNCHANGED, DELETED = "bronze", "quarantine", "unchanged", "deleted"
_SEEN = "_cdi_seen_hash"


@dataclass
class IngestResult:
    """What one source's batch did; ``rows_read == rows_bronze + rows_quarantined + rows_unchanged``.

    ``rows_unchanged``: good rows equal to their record's current version in bronze (and, for
    JDBC and Delta sources, rows equal to one already in quarantine); they are not written again.
    ``rows_deleted``: records of a ``load: snapshot`` source the batch no longer has; each got a
    tombstone row in bronze (not rows read, so not part of the identity).
    """

    source: str
    status: str  # "ingested" | "up_to_date" | "failed"
    batch_id: str | None = None
    units: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_bronze: int = 0
    rows_quarantined: int = 0
    rows_unchanged: int = 0
    rows_deleted: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    new_columns: list[str] = field(default_factory=list)
    watermark: str | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def quarantine_share(self) -> float:
        """Rejected rows over rows read; rows of erased persons are no fault of the source."""
        faulty = self.rows_quarantined - self.reasons.get(ERASED_REASON_CODE, 0)
        return faulty / self.rows_read if self.rows_read else 0.0

    @property
    def identity_holds(self) -> bool:
        return self.rows_read == self.rows_bronze + self.rows_quarantined + self.rows_unchanged


def run_ingest(
    spark: SparkSession,
    cfg: CdiConfig,
    lake: Lake,
    run_id: str,
    summary: RunSummary | None = None,
    sources: list[str] | None = None,
) -> list[IngestResult]:
    """Ingest the configured sources (or the named ones); raise IngestError if any failed."""
    summary = summary or RunSummary(run_id=run_id)
    selected = cfg.select_sources(sources)
    ledger = IngestLedger(lake)
    results: list[IngestResult] = []
    for source in selected:
        started = time.perf_counter()
        try:
            with summary.step("ingest", source.name) as step:
                result = ingest_source(spark, cfg, lake, ledger, source, run_id)
                step.rows = result.rows_read
                step.details.update(_details(result))
        except (CdiError, PySparkException, Py4JJavaError, OSError) as exc:
            # one source's problem (bad file, unreachable database, full disk) must not stop the others
            log.error("ingest of source %s failed: %s", source.name, exc, exc_info=not isinstance(exc, CdiError))
            result = IngestResult(source.name, "failed")
            if isinstance(exc, IngestError) and exc.results:
                result = exc.results[0]  # the failed batch's counts
            if isinstance(exc, CdiError):
                error = one_line_text(str(exc), limit=2000)
                if not error.startswith(f"source '{source.name}'"):
                    error = f"source '{source.name}': {error}"
            else:  # Spark's messages carry a JVM stack trace: its root cause says more
                error = f"source '{source.name}': ingest failed: {root_cause(exc)}"
            result.status, result.error, result.seconds = "failed", error, time.perf_counter() - started
        results.append(result)
    failed = [r for r in results if r.status == "failed"]
    try:
        with _io(None, "creating", [lake.path(QUARANTINE_TABLE)], write=True):
            ensure_quarantine_table(lake)
    except StorageIOError:
        if not failed:
            raise
        log.error("could not create %s", QUARANTINE_TABLE, exc_info=True)  # the sources' failures say why
    log.info("ingest summary (run %s):\n%s", run_id, format_results(results))
    if failed:
        raise IngestError(failure_message(results), results)
    return results


def failure_message(results: list[IngestResult]) -> str:
    """First line: how many sources failed, which, and the first reason; then one line per failed
    source, so the last line states a reason too."""
    failed = [r for r in results if r.status == "failed"]
    others = [r.source for r in results if r.status != "failed"]
    names = ", ".join(r.source for r in failed)
    kept = f"; the other {len(others)} source(s) were ingested" if others else ""
    head = f"ingest failed for {len(failed)} source(s) ({names}){kept}: {failed[0].error}"
    if len(failed) == 1:
        return head
    return head + "\n" + "\n".join(f"  - {r.error}" for r in failed)


@contextmanager
def _io(source: SourceConfig | None, doing: str, where: list[str], *, write: bool = False) -> Iterator[None]:
    """Turn a Spark, JVM or OS failure of one step into an error naming the step, the path and the cause.

    ``where`` are the paths the step touches; the one the root cause names is shown (else the
    first). Our own errors pass through unchanged.
    """
    try:
        yield
    except CdiError:
        raise
    except (PySparkException, Py4JJavaError, OSError) as exc:
        cause = root_cause(exc)
        named = [w for w in where if w in cause or (local_path(w) or "\0") in cause]
        place = (named or where or ["?"])[0]
        hint = io_hint(cause, "write" if write else "read")
        who = f"source '{source.name}': " if source is not None else ""
        message = (
            f"{who}ingest stage, {doing} {place} failed: {cause}; "
            + (hint or "see the log for the full error")
        )
        if write:
            message += ". Nothing of the batch was committed; the next run removes what was written"
            raise StorageIOError(message) from exc
        looks_io = bool(hint) or "IOException" in cause or isinstance(exc, OSError)
        raise (SourceIOError if looks_io else SourceReadError)(message) from exc


def _details(r: IngestResult) -> dict[str, Any]:
    if r.status != "ingested":
        return {"status": r.status}
    out: dict[str, Any] = {"batch": r.batch_id, "bronze": r.rows_bronze, "quarantined": r.rows_quarantined}
    if r.rows_unchanged:
        out["unchanged"] = r.rows_unchanged
    if r.rows_deleted:
        out["deleted"] = r.rows_deleted
    if r.new_columns:
        out["new_columns"] = r.new_columns
    return out


def new_batch_id(run_id: str, source: str) -> str:
    """Unique per attempt, so rows of a crashed attempt are never confused with a later one's."""
    safe_run = re.sub(r"[^A-Za-z0-9_.:-]", "_", run_id)
    return f"{safe_run}-{source}-{uuid.uuid4().hex[:8]}"


def ingest_source(
    spark: SparkSession, cfg: CdiConfig, lake: Lake, ledger: IngestLedger, source: SourceConfig, run_id: str
) -> IngestResult:
    """Ingest one source's new rows as one batch (see the module docstring for the steps)."""
    started = time.perf_counter()
    table = schema.bronze(source.name)
    with _io(source, "cleaning up unfinished batches in", [lake.path(table), lake.path(QUARANTINE_TABLE)], write=True):
        ledger.discard_unfinished(source.name)
    with _io(source, "reading", _source_paths(spark, source)):
        batch = read_source(spark, source, lake, ledger)
    if batch is None:
        log.info("source %s: nothing new", source.name)
        return IngestResult(source.name, "up_to_date", seconds=time.perf_counter() - started)
    batch_id = new_batch_id(run_id, source.name)
    log.info("source %s: batch %s reads %s", source.name, batch_id, ", ".join(u.unit for u in batch.units))
    ingested_at = datetime.now(UTC)
    table_columns = lake.schema(table).fieldNames() if lake.exists(table) else None
    current = None
    if table_columns is not None:
        # pinned to the version before this batch's own write, which reads it again
        current = S.current_state(lake.read(table, version=lake.version(table)))

    result = IngestResult(source.name, "ingested", batch_id, units=[u.unit for u in batch.units])
    checked = _checked(lake, cfg, source, batch, current)
    checked = checked.persist(StorageLevel.MEMORY_AND_DISK)  # counted, checked and written from one read
    try:
        with _io(source, "reading", [u.unit for u in batch.units]):
            per_unit, reasons = _count(checked, result)
        unknown = sorted(set(per_unit) - {u.unit for u in batch.units})
        if unknown:
            raise CountIdentityError(
                f"source '{source.name}': rows came from {unknown}, which is not among the batch's units "
                f"{[u.unit for u in batch.units]}; please report this as a bug",
                [result],
            )
        result.reasons = reasons
        if result.rows_read == 0 and source.format == "jdbc":
            log.info("source %s: the database returned no rows", source.name)
            result.status = "up_to_date"
            return result
        check_required_columns(source, batch.unit_columns(checked))
        result.new_columns = new_columns(batch.columns, table_columns)
        if batch.watermark is not None and result.rows_read - result.rows_quarantined:
            # over accepted rows only: a rejected row's bad (e.g. far-future) value must not hide later rows
            accepted = checked.where(F.col(OUTCOME) != QUARANTINE)
            result.watermark = accepted.agg(batch.watermark).first()[0]

        rejected = quarantine_rows(
            checked.where(F.col(OUTCOME) == QUARANTINE), source.name, batch_id, run_id, ingested_at, batch.raw
        )
        limit = source.max_quarantine_share if source.max_quarantine_share is not None else cfg.ingest.max_quarantine_share
        if result.quarantine_share > limit:
            # kept for inspection; the batch never commits, so the next run removes them again
            with _io(source, "writing", [lake.path(QUARANTINE_TABLE)], write=True):
                write_quarantine(lake, rejected, source.name, batch_id)
            top = ", ".join(f"{code} {n}" for code, n in Counter(reasons).most_common(3))
            raise QuarantineLimitError(
                f"source '{source.name}': {result.rows_quarantined:,} of {result.rows_read:,} rows "
                f"({result.quarantine_share:.1%}) were quarantined, more than the limit of {limit:.1%}; top reasons: "
                f"{top}. Nothing of batch {batch_id} was committed; its rejected rows are in {QUARANTINE_TABLE} "
                f"until the next run. Fix the source, or raise max_quarantine_share for it.",
                [result],
            )

        gone = None
        written = quarantined = None  # the batch's commits, whose row counts are checked
        if source.load == "snapshot" and current is not None:
            gone = _deletions(cfg, source, current, checked, result)

        if result.new_columns:
            log.info(
                "source %s: new column(s) %s in this batch; adding them to %s", source.name, result.new_columns, table
            )
        if result.rows_bronze or gone is not None or (table_columns is None and batch.columns):  # no table of no columns
            rows = checked.where(F.col(OUTCOME) == BRONZE).select(
                F.lit(source.name).alias(L.SOURCE),
                F.col(L.RECORD_ID),
                F.lit(batch_id).alias(L.BATCH_ID),
                F.lit(ingested_at).cast("timestamp").alias(L.INGESTED_AT),
                F.col(L.SOURCE_FILE),
                F.col(L.SOURCE_LINE).cast("long").alias(L.SOURCE_LINE),
                F.col(L.ROW_HASH),
                F.lit(False).alias(L.DELETED),
                *[F.col(identifier(c)) for c in batch.columns],
            )
            if gone is not None:  # the same commit as the batch's rows
                last_unit = batch.units[-1].unit
                rows = rows.unionByName(
                    S.tombstones(gone, source.name, batch_id, ingested_at, last_unit, batch.columns, rows.schema)
                )
            # tables written before _deleted existed get it with their first new rows
            adds_deleted = table_columns is not None and L.DELETED not in table_columns
            try:
                with _io(source, "writing", [lake.path(table)], write=True):
                    written = lake.write(
                        table,
                        rows,
                        mode="append",
                        allow_new_columns=bool(result.new_columns) or adds_deleted,
                        operation="INGEST",
                        metadata={"source": source.name, "batch_id": batch_id},
                    )
            except SchemaMismatchError as exc:
                raise SourceSchemaError(
                    f"source '{source.name}': this batch does not fit {table}: {exc}. Nothing of the batch was kept.",
                    [result],
                ) from exc
        if result.rows_quarantined:
            with _io(source, "writing", [lake.path(QUARANTINE_TABLE)], write=True):
                quarantined = write_quarantine(lake, rejected, source.name, batch_id)
        with _io(source, "counting back batch rows of", [lake.path(table), lake.path(QUARANTINE_TABLE)]):
            _verify(lake, table, result, written, quarantined)
        with _io(source, "committing to", [lake.path(LEDGER_TABLE)], write=True):
            ledger.commit(
                source.name,
                batch_id,
                run_id,
                ingested_at,
                [(_with_watermark(u, result.watermark), per_unit.get(u.unit, {})) for u in batch.units],
            )
    except IngestError as exc:
        if not exc.results:
            exc.results = [result]
        raise
    finally:
        checked.unpersist()
    result.seconds = time.perf_counter() - started
    log.info(
        "source %s: batch %s read %d rows: %d to bronze, %d quarantined%s%s",
        source.name,
        batch_id,
        result.rows_read,
        result.rows_bronze,
        result.rows_quarantined,
        f", {result.rows_unchanged} unchanged (already in bronze)" if result.rows_unchanged else "",
        f"; {result.rows_deleted} record(s) deleted" if result.rows_deleted else "",
    )
    return result


def _deletions(cfg: CdiConfig, source: SourceConfig, current: DataFrame, checked: DataFrame, result: IngestResult):
    """The live records a snapshot batch lacks (a frame of ids), or None; more than the source's
    ``max_delete_share`` of its live records raises :class:`SnapshotDeleteLimitError`."""
    live, absent = S.live_and_absent(current, checked)  # one job over the current state
    if not absent:
        return None
    limit = source.max_delete_share if source.max_delete_share is not None else cfg.ingest.max_delete_share
    if absent > limit * live:
        files = ", ".join(result.units)
        where = f" (in {source.origin})" if source.origin else ""
        raise SnapshotDeleteLimitError(
            f"source '{source.name}': the snapshot in {files} lacks {absent:,} of the source's {live:,} live records "
            f"({absent / live:.1%}), more than max_delete_share {limit:.1%}, so they were not deleted. Nothing of batch "
            f"{result.batch_id} was committed. An empty or cut-short export looks like this: deliver the full "
            f"snapshot again; if the deletions are real, raise sources[{source.name}].max_delete_share{where} "
            "(or ingest.max_delete_share) for one run.",
            [result],
        )
    result.rows_deleted = absent
    log.warning(
        "source %s: %d of %d live record(s) are absent from the snapshot %s: deleted (tombstones in %s)",
        source.name, absent, live, ", ".join(result.units), schema.bronze(source.name),
    )  # fmt: skip
    return S.absent_ids(current, checked)


def _source_paths(spark: SparkSession, source: SourceConfig) -> list[str]:
    """The files a file source reads (to name the one that failed), else its location."""
    if source.format in ("csv", "json", "parquet") and source.path:
        try:
            return [f.uri for f in list_files(spark, source)] + [source.path]
        except (PySparkException, Py4JJavaError, OSError):  # the read itself reports what is wrong
            pass
    return [source.path or source.name]


def _checked(lake: Lake, cfg: CdiConfig, source: SourceConfig, batch: SourceBatch, current: DataFrame | None):
    """The batch with _reason, lineage values and _outcome (bronze, quarantine or unchanged).

    Unchanged: a good row equal to its record's current bronze version (:mod:`.snapshots`), and
    for table and database sources also a row equal to one they delivered into quarantine before.
    """
    max_len = source.max_field_length or cfg.ingest.max_field_length
    df = classify(batch.df, source, batch.columns, max_len)
    has_ids = all(L.top_level(c, batch.columns) in batch.columns for c in source.id_columns)
    # without its id columns (empty files, drift) a batch fails the drift check before anything is written
    record_id = L.record_id(source.id_columns, batch.columns) if has_ids else F.lit(None).cast("string")
    df = df.withColumn(L.ROW_HASH, L.row_hash(batch.columns)).withColumn(L.RECORD_ID, record_id)
    if has_ids:
        df = df.withColumn(REASON, F.coalesce(F.col(REASON), duplicate_id_reason(source)))
        df = _erased(lake, cfg, source, df, batch.raw)
    rules: list[tuple[Column, str]] = []  # the first that holds decides
    rejected = _rejected_hashes(lake, source.name) if batch.dedupe else None
    if rejected is not None:  # a table or database source re-reads its rejects on every read
        df = df.join(rejected, df[L.ROW_HASH] == rejected[_SEEN], "left")
        rules.append((F.col(_SEEN).isNotNull(), UNCHANGED))
    rules.append((F.col(REASON).isNotNull(), QUARANTINE))
    if current is not None:
        df = df.join(current, on=L.RECORD_ID, how="left")
        rules.append((S.matches_current(), UNCHANGED))
    outcome = F.lit(BRONZE)
    for condition, value in reversed(rules):
        outcome = F.when(condition, F.lit(value)).otherwise(outcome)
    return df.withColumn(OUTCOME, outcome)


def _erased(lake: Lake, cfg: CdiConfig, source: SourceConfig, df: DataFrame, raw: Column) -> DataFrame:
    """Rows of records whose person was erased get reason ``erased`` (see :mod:`cdi.privacy.register`):
    by the row's own key, a fact's customer reference, or an erased e-mail anywhere in its raw text
    (a malformed line carries no key, but still the person's address)."""
    found = erased_hashes(lake, cfg.privacy.hash_key)
    if found is None:
        return df
    salt_hex, hashes = found
    emails = sorted(erased_email_hashes(lake))
    keys = [F.concat(F.lit(f"{source.name}:"), F.col(L.RECORD_ID))]
    if source.customer_ref is not None:  # a new fact of an erased customer record is theirs too
        from cdi.errors import FactMappingError
        from cdi.silver.facts import customer_ref

        with contextlib.suppress(FactMappingError):  # the reference column is missing: the drift check names it
            keys.append(F.concat(F.lit(f"{source.customer_ref.source}:"), customer_ref(df, source)))
    erased = F.lit(False)
    for i, key in enumerate(keys):
        seen = hashes.select(F.col("_erased_hash").alias(f"_erased_{i}"))
        df = df.join(F.broadcast(seen), digest_column(salt_hex, "record", key) == F.col(f"_erased_{i}"), "left")
        erased = erased | F.col(f"_erased_{i}").isNotNull()
    if emails:
        tokens = F.regexp_extract_all(F.lower(raw.cast("string")), F.lit(EMAIL_TOKEN), F.lit(0))
        hashed = F.transform(tokens, lambda e: digest_column(salt_hex, "email", e))
        erased = erased | F.coalesce(F.arrays_overlap(hashed, F.array(*[F.lit(h) for h in emails])), F.lit(False))
    flagged = df.withColumn(REASON, F.when(erased, erased_reason()).otherwise(F.col(REASON)))
    return flagged.drop(*[f"_erased_{i}" for i in range(len(keys))])


def _rejected_hashes(lake: Lake, source: str):
    """Row hashes of a source's rows already rejected into quarantine."""
    if not lake.exists(QUARANTINE_TABLE):
        return None
    rejected = lake.read(QUARANTINE_TABLE).where(F.col(L.SOURCE) == source)
    return rejected.select(F.col(L.ROW_HASH).alias(_SEEN)).where(F.col(_SEEN).isNotNull()).distinct()


def _count(checked, result: IngestResult) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Rows per unit and outcome, and rejected rows per reason code, in one pass."""
    rows = (
        checked.groupBy(L.SOURCE_FILE, OUTCOME, reason_code(F.col(REASON)).alias("code")).count().collect()
    )  # bounded by units x outcomes x reason codes
    per_unit: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reasons: Counter = Counter()
    for r in rows:
        unit, outcome, n = r[L.SOURCE_FILE], r[OUTCOME], r["count"]
        per_unit[unit]["read"] += n
        per_unit[unit][outcome] += n
        if outcome == QUARANTINE:
            reasons[r["code"]] += n
    result.rows_read = sum(u["read"] for u in per_unit.values())
    result.rows_bronze = sum(u[BRONZE] for u in per_unit.values())
    result.rows_quarantined = sum(u[QUARANTINE] for u in per_unit.values())
    result.rows_unchanged = sum(u[UNCHANGED] for u in per_unit.values())
    return {k: dict(v) for k, v in per_unit.items()}, dict(reasons)


def _verify(
    lake: Lake, table: str, result: IngestResult, written: WriteResult | None, quarantined: WriteResult | None
) -> None:
    """Count the batch back: read = bronze + quarantined + unchanged, and bronze's new rows =
    accepted rows + tombstones (deleted). The counts come from the two commits' own file
    statistics, which is what they committed, without a scan; where a commit's statistics are
    gone or incomplete, the batch is counted back from both tables (one job)."""
    from_commits = _committed_rows(lake, table, written, result.rows_bronze + result.rows_deleted)
    if from_commits is not None:
        in_quarantine = _committed_rows(lake, QUARANTINE_TABLE, quarantined, result.rows_quarantined)
        if in_quarantine is not None:
            _check_counts(result, from_commits - result.rows_deleted, in_quarantine, result.rows_deleted)
            return
    parts = []
    if lake.exists(table):
        batch_rows = lake.read(table).where(F.col(L.BATCH_ID) == F.lit(result.batch_id))
        kind = F.when(L.deleted(batch_rows.columns), F.lit(DELETED)).otherwise(F.lit(BRONZE))
        parts.append(batch_rows.select(kind.alias("t")))
    if result.rows_quarantined:
        parts.append(
            lake.read(QUARANTINE_TABLE)
            .where((F.col(L.SOURCE) == result.source) & (F.col(L.BATCH_ID) == result.batch_id))
            .select(F.lit(QUARANTINE).alias("t"))
        )
    found = {BRONZE: 0, QUARANTINE: 0, DELETED: 0}
    if parts:
        union = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
        found.update({r["t"]: r["count"] for r in union.groupBy("t").count().collect()})
    _check_counts(result, found[BRONZE], found[QUARANTINE], found[DELETED])


def _committed_rows(lake: Lake, table: str, commit: WriteResult | None, expected: int) -> int | None:
    """Rows the batch's commit to ``table`` added, or None when the commit's statistics cannot
    say. A write of no rows may commit nothing (then its version is an older commit's): 0."""
    if expected == 0:
        return 0
    return None if commit is None else lake.rows_added(table, commit.version)


def _check_counts(result: IngestResult, in_bronze: int, in_quarantine: int, tombstones: int) -> None:
    if (
        in_bronze != result.rows_bronze
        or in_quarantine != result.rows_quarantined
        or tombstones != result.rows_deleted
        or not result.identity_holds
    ):
        raise CountIdentityError(
            f"source '{result.source}' batch {result.batch_id}: read {result.rows_read} rows but {in_bronze} are in "
            f"bronze (expected {result.rows_bronze}), {in_quarantine} in {QUARANTINE_TABLE} (expected "
            f"{result.rows_quarantined}) and {result.rows_unchanged} were unchanged; {tombstones} tombstones "
            f"(expected {result.rows_deleted}). The batch was not "
            "committed and is removed on the next run; please report this as a bug.",
            [result],
        )


def _with_watermark(unit, watermark: str | None):
    if watermark is None:
        return unit
    from dataclasses import replace

    return replace(unit, watermark=watermark)


def format_results(results: list[IngestResult]) -> str:
    """The closing table: rows read / bronze / quarantined / unchanged, records deleted, per source and batch."""
    lines = [
        f"{'source':<22} {'status':<10} {'read':>9} {'bronze':>9} {'quarant.':>9} {'unchanged':>9} {'deleted':>9}"
        "  batch / reasons"
    ]
    for r in results:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(r.reasons.items()))
        tail = r.batch_id or ""
        if reasons:
            tail += f"  [{reasons}]"
        if r.status == "failed" and r.error:
            tail += f"  {r.error.splitlines()[0][:160]}"
        lines.append(
            f"{r.source:<22} {r.status:<10} {r.rows_read:>9,} {r.rows_bronze:>9,} {r.rows_quarantined:>9,} "
            f"{r.rows_unchanged:>9,} {r.rows_deleted:>9,}  {tail}"
        )
    return "\n".join(lines)
