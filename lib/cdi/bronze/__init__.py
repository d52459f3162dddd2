"""cdi.bronze: ingest every source into ``bronze/<source>`` Delta tables with lineage; rejected
rows go to ``bronze/_quarantine`` with a reason, and ``bronze/_ingested_files`` records what
each batch consumed, so re-runs are idempotent and incremental.

    >>> from cdi.bronze import run_ingest, format_results
    >>> results = run_ingest(spark, cfg, lake, run_id="r1")  # doctest: +SKIP
"""

from cdi.errors import (
    CountIdentityError,
    IngestError,
    QuarantineLimitError,
    SnapshotDeleteLimitError,
    SourceReadError,
    SourceSchemaError,
)

from .ingest import IngestResult, format_results, ingest_source, run_ingest
from .ledger import LEDGER_TABLE, QUARANTINE_TABLE, IngestLedger
from .validation import REASON_CODES

__all__ = [
    "LEDGER_TABLE",
    "QUARANTINE_TABLE",
    "REASON_CODES",
    "CountIdentityError",
    "IngestError",
    "IngestLedger",
    "IngestResult",
    "QuarantineLimitError",
    "SnapshotDeleteLimitError",
    "SourceReadError",
    "SourceSchemaError",
    "format_results",
    "ingest_source",
    "run_ingest",
]
