"""The shape every reader returns (:class:`SourceBatch`) and the option helpers readers share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame

from cdi.config import SourceConfig

from ..files import LISTING_OPTIONS
from ..ledger import Unit

ColumnsPerUnit = dict[str, list[str]] | Callable[[DataFrame], dict[str, list[str]]]


@dataclass
class SourceBatch:
    """The rows of one batch of a source, before validation."""

    df: DataFrame
    columns: list[str]  # the source's own columns, in source order
    units: list[Unit]  # what the batch consumes (ledger rows once committed)
    columns_per_unit: ColumnsPerUnit  # for the drift check; a function of the (cached) checked frame
    raw: Column  # the quarantine's _raw: the text line, or the row as JSON
    dedupe: bool = False  # sources re-read whole (JDBC, Delta): rows already in quarantine are unchanged
    watermark: Column | None = None  # aggregate: the batch's new high watermark (JDBC)
    notes: dict[str, str] = field(default_factory=dict)

    def unit_columns(self, checked: DataFrame) -> dict[str, list[str]]:
        return self.columns_per_unit(checked) if callable(self.columns_per_unit) else self.columns_per_unit


def text_options(source: SourceConfig, handled: tuple[str, ...]) -> dict[str, str]:
    """The source's options as Spark option strings, without the ones a reader handles itself."""
    out = {}
    for key, value in source.options.items():
        if key in handled or key in LISTING_OPTIONS:
            continue
        out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def option(source: SourceConfig, *names: str, default=None):
    for name in names:
        if name in source.options:
            return source.options[name]
    return default
