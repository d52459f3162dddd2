"""Errors of the bronze stage. Each names the source and, where known, the file and column."""

from __future__ import annotations


class IngestError(RuntimeError):
    """The ingest stage failed for one or more sources; ``results`` holds every source's outcome."""

    def __init__(self, message: str, results: list | None = None):
        super().__init__(message)
        self.results = results or []


class SourceError(IngestError):
    """One source cannot be ingested as configured (missing path, missing column, bad driver)."""


class SourceSchemaError(SourceError):
    """A file of a source lacks a column the configuration relies on."""


class QuarantineLimitError(SourceError):
    """A batch quarantined a larger share of its rows than the configured limit."""


class CountIdentityError(IngestError):
    """Rows read != rows in bronze + rows quarantined (+ rows already in bronze): a bug, never data."""
