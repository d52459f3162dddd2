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
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.sql import SparkSession

from cdi.config import SourceConfig
from cdi.errors import ConfigError

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


_GLOB = re.compile(r"[*?\[{]")


def missing_source_path(source: SourceConfig) -> str | None:
    """Why a local file or table source's ``path`` cannot be there (None when it can): the folder
    a glob starts from, or a table's folder, does not exist. Remote paths (``s3a://``, ``hdfs://``)
    are left to the read, which needs the cluster's credentials."""
    if source.format not in ("csv", "json", "parquet", "delta") or not source.path:
        return None
    local = local_path(source.path)
    if local is None:
        return None
    glob = _GLOB.search(local)
    fixed = local if glob is None else os.path.dirname(local[: glob.start()]) or "."
    if os.path.exists(fixed):
        return None
    what = "folder" if glob is not None or source.format == "delta" else "file or folder"
    return f"{what} {fixed} does not exist"


def check_source_paths(sources: Sequence[SourceConfig]) -> None:
    """Fail before Spark starts, naming every source whose local path is missing."""
    problems = []
    for source in sources:
        why = missing_source_path(source)
        if why is not None:
            origin = f" ({source.origin})" if source.origin else ""
            problems.append(f"source '{source.name}'{origin}: path {source.path}: {why}")
    if problems:
        raise ConfigError("; ".join(problems) + ". Fix the path in the config, or put the source's files there.")


def local_path(uri: str) -> str | None:
    """The local file system path of a ``file:`` URI, else None."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path)
    return None
