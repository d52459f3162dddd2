"""Listing the lake's tables (folders holding a ``_delta_log``) and clearing a table folder whose
first commit never landed, on a local disk or an object store."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pyarrow.fs as pafs


def filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    if "://" in root and not root.startswith("file://"):
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), root.removeprefix("file://")


def local_path(path: str) -> str:
    """A local file's path from a Hadoop path string (``file:/x/k=a b``: not percent-encoded)."""
    if path.startswith("file:"):
        rest = path[len("file:") :]
        return "/" + rest.lstrip("/")
    return path


def commit_actions(fs: pafs.FileSystem, base: str, version: int) -> list[dict[str, Any]] | None:
    """The actions of one commit file of ``_delta_log``, or None when it is gone (log retention)."""
    try:
        with fs.open_input_stream(f"{base.rstrip('/')}/_delta_log/{version:020d}.json") as stream:
            return [json.loads(line) for line in stream.read().decode("utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        return None


def rows_added_in_commit(path: str, version: int) -> int | None:
    """The rows of the files one commit added, from the per-file statistics both engines write
    into the commit (``add.stats.numRecords``): what the commit holds, counted without a scan.
    None when the commit file is gone (log retention) or a file has no row count."""
    actions = commit_actions(*filesystem(local_path(path)), version)
    if actions is None:
        return None
    total = 0
    for add in (a["add"] for a in actions if "add" in a):
        stats = add.get("stats")
        stats = json.loads(stats) if isinstance(stats, str) else stats
        if not isinstance(stats, dict) or not isinstance(stats.get("numRecords"), int):
            return None
        total += stats["numRecords"]
    return total


def remove_uncommitted_folder(path: str) -> None:
    """Delete a table folder that holds no committed version: what a first commit cut short by
    a full disk or a kill leaves (part files, a log folder with only a temporary commit). Left
    there, it makes delta-spark's next create fail with TABLE_OR_VIEW_ALREADY_EXISTS. The caller
    has checked that no version exists; a lake has one writer at a time (the lease)."""
    fs, local = filesystem(local_path(path))
    with contextlib.suppress(FileNotFoundError):
        fs.delete_dir(local)


def delta_tables_under(root: str) -> list[str]:
    """Table names relative to ``root`` (``bronze/crm``), never descending into a table."""
    fs, base = filesystem(root)
    base = base.rstrip("/")
    found: list[str] = []

    def walk(folder: str, depth: int) -> None:
        try:
            entries = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        except (FileNotFoundError, NotADirectoryError):
            return
        dirs = [e for e in entries if e.type == pafs.FileType.Directory]
        if any(e.base_name == "_delta_log" for e in dirs):
            found.append(folder[len(base) + 1 :])
            return
        if depth < 4:
            for e in dirs:
                walk(e.path, depth + 1)

    walk(base, 0)
    return sorted(t for t in found if t)
