"""Notebook-facing helpers: open a small Spark session on a lake, read the gold and silver
tables, and turn them into *small aggregated* pandas frames ready for charts.

Every function here aggregates in Spark first; what reaches pandas is bounded by the number of
segments, bands, regions or histogram bins, never by the number of customers or records. The
notebooks in ``notebooks/`` use only this module (and :class:`cdi.lake.Lake` through it).

    >>> from cdi import analytics
    >>> ws = analytics.connect(conf_path="conf/demo.yaml")  # doctest: +SKIP
    >>> analytics.segment_table(ws.lake)  # doctest: +SKIP
    >>> analytics.export_audience(ws.lake, "champions", "out/audiences", channel="email")  # doctest: +SKIP
    >>> ws.close()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from cdi import schema
from cdi.config import CdiConfig, load_config
from cdi.gold.segments import (
    CROSSTAB_DIMENSIONS,
    consented_audience,
    crosstab_membership,
    profile_segments,
)
from cdi.lake import Lake

log = logging.getLogger(__name__)

CUSTOMER_360 = schema.CUSTOMER_360
SEGMENTS = schema.SEGMENTS
ENTITY_MAP = schema.ENTITY_MAP
PAIRS = schema.PAIRS
UNMATCHED_FACTS = schema.UNMATCHED_FACTS


# ---------------------------------------------------------------- session
@dataclass
class Workspace:
    """A notebook's Spark session, lake and (optional) configuration."""

    spark: Any
    lake: Lake
    cfg: CdiConfig | None = None

    def close(self) -> None:
        """Stop the notebook's Spark session (its JVM), so the kernel can exit cleanly."""
        self.spark.stop()


def connect(
    conf_path: str | None = None,
    lake_root: str | None = None,
    master: str = "local[1]",
    driver_memory: str = "1g",
    shuffle_partitions: int = 1,
) -> Workspace:
    """A small local Spark session and the lake named by ``conf_path`` (or by ``lake_root``).

    Notebooks run beside other Spark jobs: one core, one shuffle partition and no UI by default.
    The lake is a reader's view (:meth:`Lake.for_readers`): a run in progress is not seen half-done.
    """
    from cdi.spark import SparkSettings, build_session

    cfg = load_config(conf_path) if conf_path else None
    root = lake_root or (cfg.lake_root if cfg else None)
    if not root:
        raise ValueError("give conf_path (an environment YAML) or lake_root (the lake folder)")
    engine = cfg.storage.engine if cfg else "auto"
    spark = build_session(
        SparkSettings(
            master=master,
            app_name="cdi-notebook",
            shuffle_partitions=shuffle_partitions,
            driver_memory=driver_memory,
            conf={"spark.ui.enabled": "false", "spark.default.parallelism": str(shuffle_partitions)},
            storage_engine=engine,
        )
    )
    spark.sparkContext.setLogLevel("ERROR")
    return Workspace(spark=spark, lake=Lake(spark, str(root), job="notebook", engine=engine).for_readers(), cfg=cfg)


def require_tables(lake: Lake, *tables: str) -> None:
    """Fail early, saying which stage writes a missing table."""
    missing = [t for t in tables if not lake.exists(t)]
    if missing:
        raise FileNotFoundError(
            f"the lake at {lake.root} has no {', '.join(missing)}: run the pipeline first "
            "(`cdi run --conf <env.yaml>`, or `cdi gold` for the gold tables)"
        )


# ---------------------------------------------------------------- ordering of band labels
def band_sort_key(label: Any) -> tuple[int, float, str]:
    """Sort band labels by their lower bound: ``<18`` first, ``65+`` last, ``unknown`` at the end."""
    text = "" if label is None else str(label)
    if text in ("", "unknown"):
        return (2, 0.0, text)
    match = re.match(r"^(<)?([0-9.]+)(k?)", text)
    if not match:
        return (1, 0.0, text)
    value = float(match.group(2)) * (1000 if match.group(3) else 1)
    return (0, value - (0.5 if match.group(1) else 0.0), text)


def _ordered(labels) -> list:
    return sorted(labels, key=band_sort_key)


# ---------------------------------------------------------------- customer 360 and segments
def customer_360(lake: Lake) -> DataFrame:
    require_tables(lake, CUSTOMER_360)
    return lake.read(CUSTOMER_360)


def overview(lake: Lake) -> pd.DataFrame:
    """One row: customers, buyers, revenue, reachable customers per channel, as-of date."""
    c360 = customer_360(lake)
    row = c360.agg(
        F.count(F.lit(1)).alias("customers"),
        F.sum((F.col("orders") > 0).cast("int")).alias("buyers"),
        F.round(F.sum("revenue"), 2).alias("revenue"),
        F.first("currency").alias("currency"),
        F.sum(F.col("reachable_email").cast("int")).alias("reachable_email"),
        F.sum(F.col("reachable_sms").cast("int")).alias("reachable_sms"),
        F.sum(F.col("reachable_phone").cast("int")).alias("reachable_phone"),
        F.max("as_of").alias("as_of"),
    )
    return row.toPandas()


def segment_table(lake: Lake) -> pd.DataFrame:
    """Profiles of the configured segments (one row per segment), largest first."""
    require_tables(lake, CUSTOMER_360, SEGMENTS)
    profiles = profile_segments(lake.read(SEGMENTS), lake.read(CUSTOMER_360))
    return profiles.orderBy(F.desc("customers"), "segment").toPandas()


def revenue_by_age_gender(lake: Lake) -> pd.DataFrame:
    """Revenue per age band (rows, youngest first) and gender (columns)."""
    c360 = customer_360(lake)
    cells: pd.DataFrame = (
        c360.groupBy("age_band", F.coalesce("gender", F.lit("unknown")).alias("gender"))
        .agg(F.round(F.sum("revenue"), 2).alias("revenue"))
        .toPandas()
    )
    table = cells.pivot_table(index="age_band", columns="gender", values="revenue", aggfunc="sum", fill_value=0.0)
    return table.reindex(_ordered(table.index))


def customers_by_income_region(lake: Lake, value: str = "customers") -> pd.DataFrame:
    """Heat-map data: income band (rows, lowest first) x region (columns, largest first).

    ``value`` is ``customers`` or ``revenue``.
    """
    if value not in ("customers", "revenue"):
        raise ValueError("value must be 'customers' or 'revenue'")
    c360 = customer_360(lake)
    metric = F.count(F.lit(1)) if value == "customers" else F.round(F.sum("revenue"), 2)
    cells: pd.DataFrame = (
        c360.groupBy("income_band", F.coalesce("region", F.lit("unknown")).alias("region"))
        .agg(metric.alias(value))
        .toPandas()
    )
    table = cells.pivot_table(index="income_band", columns="region", values=value, aggfunc="sum", fill_value=0)
    columns = table.sum(axis=0).sort_values(ascending=False).index
    return table.reindex(index=_ordered(table.index), columns=columns)


def rfm_by_segment(segments: pd.DataFrame) -> pd.DataFrame:
    """Average recency, frequency and monetary scores of each segment's buyers, from
    :func:`segment_table` (rows: segments; 0 for a segment without buyers)."""
    columns = {"avg_r_score": "recency", "avg_f_score": "frequency", "avg_m_score": "monetary"}
    return segments.set_index("segment")[list(columns)].rename(columns=columns).astype(float).fillna(0.0)


def demographic_crosstab(
    lake: Lake, dimensions: Sequence[str] = CROSSTAB_DIMENSIONS, min_customers: int = 1
) -> pd.DataFrame:
    """The generated cross-tab segmentation: one profiled row per non-empty cell of
    ``dimensions`` (default age band x gender x income band x region), largest first."""
    c360 = customer_360(lake)
    cells = crosstab_membership(c360, dimensions)
    keys = cells.select("segment", *dimensions).distinct()
    profiles = profile_segments(cells, c360).join(keys, "segment")
    return (
        profiles.where(F.col("customers") >= min_customers)
        .select(*dimensions, *[c for c in profiles.columns if c not in dimensions])
        .orderBy(F.desc("customers"), "segment")
        .toPandas()
    )


def unmatched_facts(lake: Lake) -> pd.DataFrame:
    """The latest run's per-source counts of facts that reach no customer (one row per source)."""
    require_tables(lake, UNMATCHED_FACTS)
    table = lake.read(UNMATCHED_FACTS)
    latest = table.agg(F.max("computed_at").alias("latest")).collect()[0]["latest"]  # one row
    return table.where(F.col("computed_at") == F.lit(latest)).orderBy("source").toPandas()


# a cell a spreadsheet would run as a formula (OWASP "CSV injection"), unless it is just a number
_FORMULA_START = r"^[=+\-@\t\r]"
_PLAIN_NUMBER = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$"


def spreadsheet_safe(col: Column) -> Column:
    """A text cell that starts like a formula (``= + - @``, tab, carriage return), prefixed with a
    single quote so a spreadsheet shows it instead of running it; plain numbers (``-12.5``,
    ``+4930123``) cannot run and stay as they are.

        >>> df.select(spreadsheet_safe(F.col("name")))  # doctest: +SKIP
    """
    formula = col.rlike(_FORMULA_START) & ~col.rlike(_PLAIN_NUMBER)
    return F.when(formula, F.concat(F.lit("'"), col)).otherwise(col)


def spreadsheet_safe_frame(df: DataFrame) -> DataFrame:
    """Every text column made :func:`spreadsheet_safe`; other types are written as the numbers,
    dates and booleans they are."""
    return df.select(
        *[spreadsheet_safe(F.col(f.name)).alias(f.name) if isinstance(f.dataType, StringType) else F.col(f.name)
          for f in df.schema.fields]
    )  # fmt: skip


def export_audience(lake: Lake, segment: str, out_dir: str, channel: str = "email", *, masked: bool = True) -> dict:
    """Write the members of ``segment`` who consented to ``channel`` (and have its contact point)
    as one CSV with a header, through Spark, into ``<out_dir>/<segment>_<channel>/`` (an earlier
    export of the same segment and channel is replaced); contact points masked (``j***@example.com``)
    unless ``masked`` is false, for the campaign tool. Text cells are :func:`spreadsheet_safe`:
    the file is meant to be opened in a spreadsheet, where a name like ``=HYPERLINK(...)`` would run.

    Returns ``{"path": folder, "file": the CSV file, "customers": rows written}``.
    """
    require_tables(lake, CUSTOMER_360, SEGMENTS)
    members = lake.read(SEGMENTS)
    known = [r["segment"] for r in members.select("segment").distinct().collect()]  # one row per segment
    if segment not in known:
        raise ValueError(f"segment {segment!r} has no members in {SEGMENTS} (segments with members: {sorted(known)})")
    audience = consented_audience(lake.read(CUSTOMER_360), members, segment, channel, masked=masked)
    folder = f"{str(out_dir).rstrip('/')}/{segment}_{channel}"
    written, files = _write_csv(audience, folder)
    log.info("exported %d customers of segment %s (channel %s) to %s", written, segment, channel, folder)
    return {"path": folder, "file": str(files[0]) if files else None, "customers": written}


_RFC4180: dict[str, str | bool] = {"header": True, "quote": '"', "escape": '"'}  # quotes doubled, as spreadsheets read them


def _write_csv(df: DataFrame, folder: str) -> tuple[int, list[Path]]:
    """``df`` as one spreadsheet-safe CSV file with a header in ``folder`` (replaced), ordered by
    customer id, through Spark; the rows written (read back) and the local part files."""
    spreadsheet_safe_frame(df).orderBy("customer_id").coalesce(1).write.mode("overwrite").options(**_RFC4180).csv(folder)
    written = df.sparkSession.read.options(**_RFC4180, multiLine=True).csv(folder).count()
    local = Path(unquote(urlparse(folder).path) if folder.startswith("file:") else folder)
    return written, sorted(local.glob("part-*.csv")) if local.exists() else []


def audience(
    lake: Lake, where: str, channel: str = "email", out: str | None = None, *, masked: bool = True, preview: int = 10
) -> dict[str, Any]:
    """The customers that satisfy ``where`` (Spark SQL over ``gold/customer_360`` and
    ``gold/life_events``, see :mod:`cdi.gold.audience`) and consented to ``channel``; the contact
    masked unless ``masked`` is false. Returns ``{"customers": n, "preview": the first
    ``preview`` rows (pandas, masked like the file), "file": the CSV written to ``out`` or None}``.

        >>> analytics.audience(ws.lake, "moved_at >= date'2026-01-01' and age_band = '25-34'", "sms")  # doctest: +SKIP
    """
    from cdi.gold.audience import check_condition, select_audience

    check_condition(where)  # before any table is read
    require_tables(lake, CUSTOMER_360)
    events = lake.read(schema.LIFE_EVENTS) if lake.exists(schema.LIFE_EVENTS) else None
    members = select_audience(lake.read(CUSTOMER_360), events, where, channel, masked=masked).persist()
    try:
        count = members.count()
        shown = members.orderBy("customer_id").limit(preview).toPandas()  # at most `preview` rows
        file = None
        if out is not None:
            file = _write_single_csv(members, out)
        log.info("audience %r on %s: %d customers%s", where, channel, count, f" written to {file}" if file else "")
        return {"customers": count, "preview": shown, "file": file}
    finally:
        members.unpersist()


def _write_single_csv(df: DataFrame, out: str) -> str:
    """``df`` as the CSV file ``out`` (a local path; elsewhere, the folder Spark writes)."""
    folder = f"{out.rstrip('/')}.parts"
    _, files = _write_csv(df, folder)
    if not files:
        return folder
    target = Path(unquote(urlparse(out).path) if out.startswith("file:") else out)
    target.parent.mkdir(parents=True, exist_ok=True)
    files[0].replace(target)
    shutil.rmtree(files[0].parent, ignore_errors=True)
    return str(target)


def demographic_coverage(lake: Lake) -> pd.DataFrame:
    """Per demographic dimension of the 360: customers known, without the attribute, with it but
    unusable, and the share known (one row per dimension), as the run summary reports it."""
    from cdi.gold.customer_360 import coverage_counts
    from cdi.gold.customer_360 import demographic_coverage as coverage_of

    c360 = customer_360(lake)
    counts = c360.agg(F.count(F.lit(1)).alias("customers"), *coverage_counts(c360)).collect()[0].asDict()  # one row
    rows = coverage_of(counts, counts["customers"])
    return pd.DataFrame(
        [{"dimension": d, **{k: v for k, v in c.items() if k != "summary"}} for d, c in rows.items()]
    ).set_index("dimension")


# ---------------------------------------------------------------- life events
def life_events_by_month(lake: Lake) -> pd.DataFrame:
    """Life events per month of their effective time (rows: ``yyyy-MM``; columns: event types)."""
    require_tables(lake, schema.LIFE_EVENTS)
    counts: pd.DataFrame = (
        lake.read(schema.LIFE_EVENTS)
        .groupBy(F.date_format("effective_at", "yyyy-MM").alias("month"), "event_type")
        .agg(F.count(F.lit(1)).alias("events"))
        .toPandas()  # months x event types
    )
    if counts.empty:
        return pd.DataFrame(index=pd.Index([], name="month"))
    table = counts.pivot_table(index="month", columns="event_type", values="events", fill_value=0, aggfunc="sum")
    return table.astype("int64").sort_index()


def income_risers_by_segment(lake: Lake) -> pd.DataFrame:
    """Per segment: members, members whose income rose in the 12 months before the 360's
    ``as_of`` (``income_change_pct_12m`` > 0), their share and median rise in percent."""
    require_tables(lake, CUSTOMER_360, SEGMENTS)
    c360 = lake.read(CUSTOMER_360).select("customer_id", "income_change_pct_12m")
    rose = F.col("income_change_pct_12m") > 0
    return (
        lake.read(SEGMENTS)
        .join(c360, "customer_id")
        .groupBy("segment")
        .agg(
            F.count(F.lit(1)).alias("members"),
            F.count(F.when(rose, F.lit(1))).alias("income_rose"),
            F.percentile_approx(F.when(rose, F.col("income_change_pct_12m")), 0.5).alias("median_rise_pct"),
        )
        .withColumn("share", F.round(F.col("income_rose") / F.col("members"), 3))
        .orderBy(F.desc("income_rose"), "segment")
        .toPandas()  # one row per segment
    )


def movers_by_region(lake: Lake, months: int = 12) -> pd.DataFrame:
    """Per current region: customers, those who moved home (or country) in the ``months`` before
    the 360's ``as_of``, and their share; regions with movers first."""
    require_tables(lake, CUSTOMER_360)
    c360 = lake.read(CUSTOMER_360)
    since = F.add_months(F.col("as_of"), -months)
    moved = (F.to_date("moved_at") > since) | (F.to_date("moved_country_at") > since)
    return (
        c360.groupBy(F.coalesce(F.col("region"), F.lit("unknown")).alias("region"))
        .agg(F.count(F.lit(1)).alias("customers"), F.count(F.when(moved, F.lit(1))).alias("movers"))
        .withColumn("share", F.round(F.col("movers") / F.col("customers"), 3))
        .orderBy(F.desc("movers"), "region")
        .toPandas()  # one row per region
    )


# ---------------------------------------------------------------- linkage quality
def linkage_overview(lake: Lake) -> pd.DataFrame:
    """One row: records, customers, customers with several records, largest cluster, scored pairs."""
    require_tables(lake, ENTITY_MAP)
    sizes = lake.read(ENTITY_MAP).groupBy("customer_id").agg(F.count(F.lit(1)).alias("size"))
    row: pd.DataFrame = sizes.agg(
        F.sum("size").alias("records"),
        F.count(F.lit(1)).alias("customers"),
        F.sum((F.col("size") > 1).cast("int")).alias("customers_with_several_records"),
        F.max("size").alias("largest_cluster"),
    ).toPandas()
    row["scored_pairs"] = lake.read(PAIRS).count() if lake.exists(PAIRS) else None
    return row


def cluster_sizes(lake: Lake) -> pd.DataFrame:
    """How many customers have 1, 2, 3... source records (cluster size distribution)."""
    require_tables(lake, ENTITY_MAP)
    sizes = lake.read(ENTITY_MAP).groupBy("customer_id").agg(F.count(F.lit(1)).alias("cluster_size"))
    return (
        sizes.groupBy("cluster_size")
        .agg(F.count(F.lit(1)).alias("customers"))
        .withColumn("records", F.col("cluster_size") * F.col("customers"))
        .orderBy("cluster_size")
        .toPandas()
    )


def sources_per_customer(lake: Lake) -> pd.DataFrame:
    """How many customers are seen in 1, 2, 3... different sources."""
    require_tables(lake, ENTITY_MAP)
    spread = lake.read(ENTITY_MAP).groupBy("customer_id").agg(F.countDistinct("source").alias("sources"))
    return spread.groupBy("sources").agg(F.count(F.lit(1)).alias("customers")).orderBy("sources").toPandas()


def match_weight_histogram(lake: Lake, bin_width: float = 1.0) -> pd.DataFrame:
    """Scored pairs per match-weight bin (``bin_start`` <= weight < ``bin_start + bin_width``)."""
    require_tables(lake, PAIRS)
    if bin_width <= 0:
        raise ValueError("bin_width must be positive")
    pairs = lake.read(PAIRS).where(F.col("match_weight").isNotNull())
    start = F.floor(F.col("match_weight") / bin_width) * bin_width
    return (
        pairs.groupBy(start.alias("bin_start"))
        .agg(F.count(F.lit(1)).alias("pairs"), F.round(F.avg("match_probability"), 4).alias("avg_probability"))
        .withColumn("bin_end", F.col("bin_start") + bin_width)
        .select("bin_start", "bin_end", "pairs", "avg_probability")
        .orderBy("bin_start")
        .toPandas()
    )


@dataclass
class ModelFiles:
    """What the linkage stage saved for its newest model version (files are shown as they are)."""

    folder: Path | None
    files: list[Path] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    parameters: pd.DataFrame | None = None
    charts: dict[str, str] = field(default_factory=dict)  # file name -> HTML
    images: list[Path] = field(default_factory=list)
    markdown: dict[str, str] = field(default_factory=dict)


def _local_root(root: str) -> Path:
    if root.startswith("file:"):
        return Path(unquote(urlparse(root).path))
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", root):
        raise ValueError(f"model files can be listed only for a local lake (got {root}); copy them locally first")
    return Path(root)


def _model_parameters(folder: Path) -> pd.DataFrame | None:
    """The m/u probabilities per comparison level: parameters.json, else Splink's model.json."""
    params = folder / "parameters.json"
    if params.exists():
        levels = json.loads(params.read_text(encoding="utf-8")).get("levels")
        if isinstance(levels, list) and levels:
            return pd.DataFrame(levels)
    model = folder / "model.json"
    if model.exists():
        rows = []
        for comparison in json.loads(model.read_text(encoding="utf-8")).get("comparisons", []):
            for level in comparison.get("comparison_levels", []):
                if level.get("is_null_level"):
                    continue
                rows.append(
                    {
                        "comparison": comparison.get("output_column_name"),
                        "level": level.get("label_for_charts") or level.get("sql_condition"),
                        "m_probability": level.get("m_probability"),
                        "u_probability": level.get("u_probability"),
                    }
                )
        return pd.DataFrame(rows) if rows else None
    return None


def linkage_model_files(lake_root: str) -> ModelFiles:
    """The newest model folder under ``<lake_root>/models/linkage/`` (or the folder itself when
    files sit there directly): its metadata, parameter table, HTML charts, images and notes."""
    base = _local_root(lake_root) / "models" / "linkage"
    if not base.exists():
        return ModelFiles(folder=None)
    versions = sorted(p for p in base.iterdir() if p.is_dir() and any(p.iterdir()))
    complete = [p for p in versions if (p / "meta.json").exists()] or versions
    folder = complete[-1] if complete else base
    files = sorted(p for p in folder.iterdir() if p.is_file())
    out = ModelFiles(folder=folder, files=files, parameters=_model_parameters(folder))
    if (folder / "meta.json").exists():
        out.meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    for path in files:
        if path.suffix == ".html":
            out.charts[path.name] = path.read_text(encoding="utf-8")
        elif path.suffix in (".png", ".svg", ".jpg"):
            out.images.append(path)
        elif path.suffix == ".md":
            out.markdown[path.name] = path.read_text(encoding="utf-8")
    return out


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if hasattr(value, "to_dict") and not isinstance(value, (pd.DataFrame, dict)):
        return value.to_dict()
    return value


def evaluation_tables(report: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A scorer report as (headline metrics: metric/value, per-source-pair table)."""
    data = _plain(report)
    if not isinstance(data, dict):
        raise TypeError(f"cannot tabulate an evaluation report of type {type(report).__name__}")
    rows: list[dict[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.extend({"metric": f"{key}.{k}", "value": v} for k, v in value.items() if not isinstance(v, (list, dict)))
        elif not isinstance(value, list):
            rows.append({"metric": key, "value": value})
    pairs = pd.DataFrame([_plain(p) for p in data.get("by_source_pair", [])])
    return pd.DataFrame(rows, columns=["metric", "value"], dtype=object), pairs


def evaluate_linkage(lake: Lake, truth_path: str):
    """Score ``silver/entity_map`` against a truth file with the product's scorer
    (:func:`cdi.quality.evaluate.evaluate`); returns the scorer's report."""
    from cdi.quality.evaluate import evaluate, read_truth

    require_tables(lake, ENTITY_MAP)
    if not Path(truth_path).exists() and "://" not in str(truth_path):
        raise FileNotFoundError(f"truth file {truth_path} does not exist (the demo writes it as <demo out>/truth.csv)")
    return evaluate(lake.read(ENTITY_MAP), read_truth(lake.spark, truth_path))
