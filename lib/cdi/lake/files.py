"""Listing the lake's tables: folders holding a ``_delta_log``, on a local disk or an object store."""

from __future__ import annotations

import pyarrow.fs as pafs


def filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    if "://" in root and not root.startswith("file://"):
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), root.removeprefix("file://")


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
