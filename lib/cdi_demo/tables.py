"""The in-memory shape of one output file before it is written (see :mod:`cdi_demo.writers`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Table:
    path: str  # relative to the output directory, e.g. "crm/contacts.csv"
    fmt: str  # "csv" | "jsonl" | "parquet"
    columns: list[str]
    data: dict[str, np.ndarray]  # column -> values (object arrays for text files)
    id_column: str | None = None  # the row's own id
    customer_key: str | None = None  # the customer-record id column (truth key), if any
    delimiter: str = ","
    last_updated: str | None = None  # column holding when the source last updated the row
    last_updated_format: str | None = None  # "space" | "isoz" | "dotted"
    name_column: str | None = None  # a name field (used for invalid UTF-8 rows)
    text_column: str | None = None  # a free-text-ish field (used for over-long rows)
    malformed: tuple[tuple[str, int], ...] = ()  # (kind, how many) to insert
    to_json: Callable[[dict], dict] | None = None  # flat row -> JSON object (nesting)
    fresh_ids: Callable[[int], dict] | None = None  # k -> {column: id} for malformed rows
    arrow_schema: object = None  # pyarrow schema for parquet
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.data.values())))
