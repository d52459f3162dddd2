"""Scan every file under folders for given values: Parquet decoded (every column, nested values
as text), everything else as text (UTF-8, and Parquet's raw bytes too). For erasure tests."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path


def _parquet_text(path: Path) -> str:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return json.dumps(table.to_pylist(), default=str, ensure_ascii=False)


def scan(folders: list[str | os.PathLike], needles: list[str]) -> Counter:
    """Hits per (needle, file); case-insensitive. Empty when nothing holds any needle."""
    hits: Counter = Counter()
    wanted = [n.lower() for n in needles if n]
    for folder in folders:
        for root, _, files in os.walk(folder):
            for name in files:
                path = Path(root) / name
                raw = path.read_bytes()
                texts = [raw.decode("utf-8", errors="replace")]
                if name.endswith(".parquet"):
                    texts.append(_parquet_text(path))
                for text in texts:
                    low = text.lower()
                    for needle in wanted:
                        if needle in low:
                            hits[(needle, str(path))] += 1
    return hits
