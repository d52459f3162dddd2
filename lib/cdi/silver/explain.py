"""Why two records did (or did not) link: Splink's waterfall chart for one pair, as HTML.

The pair is scored with the latest saved linkage model (the same parameters the link stage
used) on DuckDB, reading ``silver/records`` straight from its Parquet files; term frequencies
come from the full table, as in the run. The chart is self-contained (scripts inlined), so it
opens offline.

    >>> explain_pair(cfg, lake, "crm:C000123", "shop:S000456", "pair.html")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from html import escape
from pathlib import Path

from pyspark.sql import functions as F

from cdi import schema
from cdi.config import CdiConfig
from cdi.errors import RecordNotFoundError
from cdi.silver.linkage import crossref, model
from cdi.silver.linkage.backends import DuckDBBackend
from cdi.silver.linkage.stage import linker_for, prepared_input
from cdi.sql import literal, literals

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairExplanation:
    """The chart written for a pair and the pair's score; prints (and opens) as the chart's path."""

    path: Path
    record_key_a: str
    record_key_b: str
    match_weight: float
    match_probability: float
    model_version: int
    # "<a> carries <b>'s id (source billing, column crm_id)" when a cross-reference joins the pair
    cross_reference: str | None = None

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return str(self.path)


def explain_pair(cfg: CdiConfig, lake, record_key_a: str, record_key_b: str, out_html: str | Path) -> PairExplanation:
    """Write the waterfall chart of ``record_key_a`` vs ``record_key_b`` to ``out_html``."""
    saved = model.ModelStore(cfg.lake_root).latest()
    if saved is None:
        raise model.ModelError(
            f"no trained linkage model under {model.ModelStore(cfg.lake_root).root}: run the link stage first"
        )
    link_cfg = saved.linkage_config()
    backend = DuckDBBackend(lake.spark)
    try:
        input_sdf = prepared_input(backend, lake, link_cfg).table
        keys = literals((record_key_a, record_key_b), "duckdb")
        found = {
            r[model.UNIQUE_ID]
            for r in backend.query(f"select {model.UNIQUE_ID} from {input_sdf.physical_name} where {model.UNIQUE_ID} in ({keys})")
        }
        missing = [k for k in (record_key_a, record_key_b) if k not in found]
        if missing:
            raise RecordNotFoundError(f"record_key(s) {missing} not found in silver/records (keys look like 'crm:C000123')")
        linker = linker_for(input_sdf, link_cfg, saved, backend.dialect, for_explain=True)
        # each record as a one-row table of the input's own column types: as Python dicts, a
        # missing date goes to DuckDB as an untyped NULL that year() refuses
        left, right = (
            backend.materialise(
                f"select * from {input_sdf.physical_name} where {model.UNIQUE_ID} = {literal(key, 'duckdb')}",
                f"__cdi_explain_{side}",
            )
            for side, key in (("l", record_key_a), ("r", record_key_b))
        )
        scored = linker.inference.score_pair(left, right).as_record_list()
        chart = linker.visualisations.waterfall_chart(scored, filter_nulls=False)
        html = chart.to_html(inline=True)
        reference = _cross_reference(cfg, lake, record_key_a, record_key_b)
    finally:
        backend.close()
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    if reference:
        banner = f"<p><strong>Linked by cross-reference:</strong> {escape(reference)}; the model's score below does not decide this pair.</p>"
        html = html.replace("<body>", "<body>" + banner, 1) if "<body>" in html else banner + html
    out.write_text(html, encoding="utf-8")
    row = scored[0]
    if reference:
        log.info("explain: %s vs %s: linked by cross-reference: %s", record_key_a, record_key_b, reference)
    log.info(
        "explain: %s vs %s: match weight %.2f, probability %.4f (model v%04d) -> %s",
        record_key_a,
        record_key_b,
        row["match_weight"],
        row["match_probability"],
        saved.version,
        out,
    )
    return PairExplanation(
        path=out,
        record_key_a=record_key_a,
        record_key_b=record_key_b,
        match_weight=row["match_weight"],
        match_probability=row["match_probability"],
        model_version=saved.version,
        cross_reference=reference,
    )


def _cross_reference(cfg: CdiConfig, lake, key_a: str, key_b: str) -> str | None:
    """How a cross-reference joins the two records, or None (see :mod:`cdi.silver.linkage.crossref`).
    Only the two records' references are read (the model's input in DuckDB does not carry them)."""
    records = lake.read(schema.RECORDS)
    if crossref.REFERENCES_COLUMN not in records.columns:
        return None
    two = records.where(F.col("record_key").isin(key_a, key_b))
    rows = two.select("record_key", "source", F.col(crossref.REFERENCES_COLUMN).alias("refs")).collect()  # two rows
    sources = {s.name: s for s in cfg.customer_sources}
    for row in rows:
        other = key_b if row["record_key"] == key_a else key_a
        if other in (row["refs"] or []):
            source = sources.get(row["source"])
            target = other.split(":", 1)[0]
            columns = [", ".join(r.columns()) for r in source.references if r.source == target] if source else []
            where = f" (source {row['source']}, column {' / '.join(columns)})" if columns else ""
            return f"{row['record_key']} carries the id of {other}{where}"
    return None
