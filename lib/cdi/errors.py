"""One error hierarchy, so callers (the CLI above all) catch by type and never by message text.

::

    CdiError
    ├── ConfigError            configuration or usage; the CLI exits 2
    │   └── SegmentRuleError
    ├── SourceError            a source cannot be read or does not fit its mapping
    │   ├── IngestError            the ingest stage failed (``results`` per source)
    │   │   ├── SourceReadError        one source, as configured, cannot be ingested
    │   │   │   ├── SourceSchemaError
    │   │   │   ├── SourceIOError          a file cannot be read (permission, vanished, I/O)
    │   │   │   ├── QuarantineLimitError
    │   │   │   └── SnapshotDeleteLimitError
    │   │   └── CountIdentityError
    │   ├── SourceMappingError     a mapping names a column bronze lacks
    │   │   └── FactMappingError
    │   └── EvaluationError        a truth file does not fit the entity map
    ├── LakeError              storage (subclassed in :mod:`cdi.lake`), and missing stage inputs
    │   ├── MissingTableError
    │   └── StorageIOError         a table cannot be written (disk full, read-only lake)
    ├── LinkageError           the Splink model cannot be trained, loaded or applied
    │   └── ModelError
    ├── PublishError           gold outputs cannot be published
    │   └── PropagationError
    ├── NotFoundError          a key names no customer, or several
    │   ├── CustomerNotFoundError
    │   ├── AmbiguousCustomerError
    │   └── RecordNotFoundError
    └── InstallError           the installation lacks a part (lookup table, demo generator)
        └── LookupTableError

Each class also derives from the built-in exception it replaced (``ValueError``, ``RuntimeError``,
``LookupError``), so code written against those keeps working.

    >>> try:
    ...     raise MissingTableError("table silver/records does not exist: run `cdi link` first")
    ... except CdiError as exc:
    ...     print(exit_code(exc))
    1
"""

from __future__ import annotations

from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CdiError(Exception):
    """Base of every error ``cdi`` raises on purpose; the message says what, where and what to do."""

    exit_code = EXIT_FAILED  # the CLI's exit code for it (see exit_code())


class ConfigError(CdiError, ValueError):
    """A configuration or usage problem, located by file and key path."""

    exit_code = EXIT_USAGE


class SegmentRuleError(ConfigError):
    """A segment's ``where`` is not a valid condition over the customer 360's columns."""


class SourceError(CdiError, RuntimeError):
    """A source cannot be read, or its data does not fit what its configuration says."""


class IngestError(SourceError):
    """The ingest stage failed for one or more sources; ``results`` holds every source's outcome."""

    def __init__(self, message: str, results: list[Any] | None = None):
        super().__init__(message)
        self.results = results or []


class SourceReadError(IngestError):
    """One source cannot be ingested as configured (missing path, missing column, bad driver)."""


class SourceSchemaError(SourceReadError):
    """A file of a source lacks a column the configuration relies on."""


class SourceIOError(SourceReadError):
    """A source's file cannot be read: permission denied, moved away during the run, an I/O error."""


class QuarantineLimitError(SourceReadError):
    """A batch quarantined a larger share of its rows than the configured limit."""


class SnapshotDeleteLimitError(SourceReadError):
    """A snapshot batch lacks more of the source's live records than ``max_delete_share``."""


class CountIdentityError(IngestError):
    """Rows read != rows in bronze + rows quarantined (+ rows already in bronze): a bug, never data."""


class SourceMappingError(SourceError, ValueError):
    """A source's mapping names a column its bronze table does not have."""


class FactMappingError(SourceMappingError):
    """A fact source's mapping names a column its bronze table does not have."""


class EvaluationError(SourceError, ValueError):
    """The entity map and the truth cannot be scored against each other."""


class LakeError(CdiError, RuntimeError):
    """Base class of storage errors."""


class LeaseHeldError(LakeError):
    """Another run holds the lake's lease: one writer at a time (exit 2, like a usage error)."""

    exit_code = EXIT_USAGE


class LeaseLostError(LakeError):
    """This run stopped renewing its lease long enough for another run to take the lake over."""


class RecoveryError(LakeError):
    """What a dead run left unfinished cannot be rolled back automatically (the message says how to by hand)."""


class MissingTableError(LakeError):
    """A table a stage reads does not exist yet: an earlier stage has not run."""


class StorageIOError(LakeError):
    """A table cannot be written: the disk is full, the lake is read-only, an I/O error."""


class LinkageError(CdiError, RuntimeError):
    """The linkage model cannot be trained, loaded or applied to this data."""


class ModelError(LinkageError):
    """A saved model cannot be used (missing, unreadable or built for other comparisons)."""


class PublishError(CdiError, RuntimeError):
    """A gold output cannot be published to its target."""


class PropagationError(PublishError):
    """A publication target failed; the run stays unpublished there and is retried next time."""


class NotFoundError(CdiError, LookupError):
    """A key names no customer, or more than one."""


class CustomerNotFoundError(NotFoundError):
    """No customer matches the key."""


class AmbiguousCustomerError(NotFoundError):
    """The key (a shared e-mail or phone) matches several customers."""

    def __init__(self, key: str, customer_ids: list[str]):
        self.customer_ids = customer_ids
        super().__init__(
            f"{key!r} matches {len(customer_ids)} customers: {', '.join(customer_ids)}; show one of them by its id"
        )


class RecordNotFoundError(NotFoundError, KeyError):
    """A record key names no record of ``silver/records``."""


class InstallError(CdiError, RuntimeError):
    """The installation lacks a part it needs (a shipped lookup table, the demo generator)."""


class LookupTableError(InstallError):
    """A shipped lookup table is missing or inconsistent (a packaging or editing mistake)."""


def root_cause(exc: BaseException) -> str:
    """The innermost cause of an error as ``Type: message`` (one line), following Java causes
    (``Py4JJavaError.java_exception``, a captured Spark error's origin) and Python ``__cause__``."""
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    if java is not None:
        try:
            for _ in range(30):
                cause = java.getCause()
                if cause is None:
                    break
                java = cause
            message = java.getMessage()
            return one_line_text(f"{java.getClass().getName()}: {message}" if message else java.getClass().getName())
        except Exception:  # the JVM is gone: fall back to the Python text
            pass
    inner: BaseException = exc
    while inner.__cause__ is not None:
        inner = inner.__cause__
    return one_line_text(f"{type(inner).__name__}: {inner}")


_IO_HINTS = (
    (("No space left", "Disk quota exceeded", "ENOSPC"), "the disk is full: free space there (or move the lake) and rerun"),
    (("Permission denied", "AccessDenied", "Read-only file system", "Mkdirs failed", "EACCES", "EROFS"),
     "permission denied: give the user running cdi {access} access to it and rerun"),
    (("FileNotFoundException", "No such file", "PATH_NOT_FOUND", "does not exist"),
     "it was moved or deleted while cdi ran: put it back, or rerun"),
)  # fmt: skip


def io_hint(cause: str, access: str = "read") -> str:
    """What to do about an I/O failure, from the text of its root cause ('' when nothing fits)."""
    for needles, hint in _IO_HINTS:
        if any(n in cause for n in needles):
            return hint.format(access=access)
    return ""


def one_line_text(text: str, limit: int = 300) -> str:
    """Text on one line (line breaks and a JVM trace folded away), at most ``limit`` characters."""
    line = " ".join(part.strip() for part in str(text).splitlines() if part.strip() and not part.strip().startswith("at "))
    return line if len(line) <= limit else line[: limit - 3] + "..."


def exit_code(exc: BaseException) -> int:
    """The CLI's exit code for an error: 2 for configuration, usage and a lake in use by another
    run (nothing was done; fix the call or wait), 1 for everything else."""
    return exc.exit_code if isinstance(exc, CdiError) else EXIT_FAILED


def one_line(exc: BaseException) -> str:
    """The first line of an error's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
