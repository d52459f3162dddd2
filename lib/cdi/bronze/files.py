"""Which files a file-based source consists of right now: path, size and modification time.

A source's ``path`` is a file, a folder (every visible file below it, in subfolders too; names
starting with ``_`` or ``.`` are hidden, as in Spark) or a glob. Files are listed with Hadoop's
file system API on the driver, so local folders, HDFS and object stores list alike and no Spark
job runs. ``options.pathGlobFilter`` keeps only file names matching a glob (``*.csv``).

Every file is identified by its URI as Spark's ``_metadata.file_path`` spells it (percent-encoded,
``file:/data/a%20b.csv``): that is the ``_source_file`` of its rows and its key in the
``bronze/_ingested_files`` ledger.

    >>> files = list_files(spark, source)  # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.sql import SparkSession

from cdi.config import SourceConfig

LISTING_OPTIONS = ("pathGlobFilter", "recursiveFileLookup")  # consumed by the listing, not the readers


@dataclass(frozen=True)
class SourceFile:
    path: str  # as listed; what the readers are given
    uri: str  # canonical identity, equal to the rows' _metadata.file_path
    size: int
    modified_at: datetime

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]


def file_uri(spark: SparkSession, path: str) -> str:
    """Spark's spelling of a file location (Hadoop ``Path.toUri``), as in ``_metadata.file_path``."""
    jvm: Any = spark.sparkContext._jvm
    return jvm.org.apache.hadoop.fs.Path(path).toUri().toString()


def _hidden(name: str) -> bool:
    return name.startswith(("_", "."))


def list_files(spark: SparkSession, source: SourceConfig) -> list[SourceFile]:
    """The source's files sorted by URI; empty when the path matches nothing."""
    jvm: Any = spark.sparkContext._jvm
    pattern = jvm.org.apache.hadoop.fs.Path(source.path)
    fs = pattern.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    name_filter = source.options.get("pathGlobFilter")
    matched = fs.globStatus(pattern)
    pending = list(matched) if matched is not None else []
    files = []
    while pending:
        status = pending.pop()
        path = status.getPath()
        if status.isDirectory():
            pending.extend(c for c in fs.listStatus(path) if not _hidden(c.getPath().getName()))
            continue
        if name_filter and not fnmatch.fnmatchcase(path.getName(), str(name_filter)):
            continue
        modified = datetime.fromtimestamp(status.getModificationTime() / 1000, tz=UTC)
        listed = path.toString()
        files.append(SourceFile(listed, file_uri(spark, listed), int(status.getLen()), modified))
    return sorted(files, key=lambda f: f.uri)


def local_path(uri: str) -> str | None:
    """The local file system path of a ``file:`` URI, else None."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path)
    return None
