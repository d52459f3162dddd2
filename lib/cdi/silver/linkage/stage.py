"""The link stage: standardised records in, scored pairs, clusters and stable customer ids out.

Reads ``silver/records``; trains the Splink model (or reuses the latest saved version); predicts
pairs above ``linkage.predict_threshold``; clusters at ``linkage.cluster_threshold``; assigns
stable ids; writes ``silver/pairs`` (overwrite), and ``silver/id_history`` (append, only when
something changed) with ``silver/entity_map`` (MERGE) in one lake transaction, so a crash
between them is rolled back by the next run. The Splink engine (DuckDB or Spark) is
chosen per run and invisible to the rest of the pipeline.

    >>> figures = run_link(lake, cfg.linkage, run_id="20261124T0600Z")  # doctest: +SKIP
    >>> figures.backend, figures.pairs, figures.clusters  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DateType, DoubleType, StringType, StructField, StructType
from splink import Linker
from splink.internals.exceptions import EMTrainingException  # Splink exports no public name for it

from cdi import schema
from cdi.config import LinkageConfig
from cdi.errors import LinkageError, MissingTableError
from cdi.lake import Lake, MergeSpec
from cdi.progress import RunSummary
from cdi.silver.ids import assign_customer_ids
from cdi.silver.steward import apply_decisions, read_decisions
from cdi.sql import identifier

from . import blocking, chains, crossref, model
from .backends import LinkageBackend, choose_backend, make_backend
from .splink_log import TrainingWarnings, splink_warnings_summarised

log = logging.getLogger(__name__)

RECORDS_TABLE = schema.RECORDS
PAIRS_TABLE = schema.PAIRS
ENTITY_MAP_TABLE = schema.ENTITY_MAP
ID_HISTORY_TABLE = schema.ID_HISTORY
INPUT_NAME = "cdi_link_input"
STAGE = "link"
EM_PROBE_RECORDS = 50_000
_UNDERFLOW = "below the minimum allowed value"  # Splink's ValueError for an m or u probability of 0


@dataclass(frozen=True)
class LinkResult:
    """What one link stage run did; the run summary holds the same steps with their timings."""

    run_id: str
    records: int
    backend: str
    backend_reason: str
    pairs: int
    clusters: int
    model_version: int | None
    trained: bool
    capped_keys: list[dict[str, Any]]
    id_events: dict[str, int]
    seconds: dict[str, float]
    model_path: str | None = None
    # clusters above linkage.max_cluster_size: how many, and the largest with example record keys
    oversized_clusters: int = 0
    largest_clusters: list[dict[str, Any]] = field(default_factory=list)
    # what the steward decisions in force did to the clusters (cdi.silver.steward.StewardReport)
    steward: dict[str, Any] = field(default_factory=dict)
    # pairs joined by a cross-reference column (cdi.silver.linkage.crossref), and references
    # that named no present record
    cross_references: int = 0
    dangling_references: int = 0
    # weak chains found (cdi.silver.linkage.chains): cut in split mode, listed in flag mode
    weak_chains: int = 0


@dataclass(frozen=True)
class PreparedInput:
    """The model's input registered with a backend: the records (a SplinkDataFrame), the block
    key values over the cap, and the table listing them (to prepare more records alike)."""

    table: Any
    capped: list[dict[str, Any]]
    capped_table: str


def prepared_input(backend: LinkageBackend, lake, cfg: LinkageConfig, *, warn_capped: bool = True) -> PreparedInput:
    """Register the model's input (records, derived columns, capped block keys) with the backend;
    ``warn_capped``: log each block key value over the cap (the run does; a reader of its lake need not)."""
    view = backend.load_records(lake, RECORDS_TABLE, model.input_columns(cfg))
    keys = blocking.block_keys(model.all_rule_sets(cfg))
    capped_table = backend.create_table(blocking.capped_values_sql(view, keys, cfg.blocking_key_cap), "cdi_capped_keys")
    capped = backend.query(
        f"select block_key, value, records from {capped_table} order by records desc, block_key, value limit 50"
    )
    for row in capped if warn_capped else ():
        log.warning(
            "blocking key %s: value %r is shared by %s records (> linkage.blocking_key_cap %s); "
            "it is left out of blocking (still compared when other rules pair the records)",
            row["block_key"],
            row["value"],
            f"{row['records']:,}",
            cfg.blocking_key_cap,
        )
    return PreparedInput(backend.materialise(model_input_sql(view, cfg, capped_table), INPUT_NAME), capped, capped_table)


def model_input_sql(view: str, cfg: LinkageConfig, capped_table: str) -> str:
    """SELECT of the model's input over a view of ``silver/records`` rows: the input columns,
    the derived ones, and the block keys nulled where ``capped_table`` lists the value."""
    select = {c: c for c in model.input_columns(cfg)}
    select.update(model.derived_columns(cfg))
    return blocking.capped_input_sql(view, select, blocking.block_keys(model.all_rule_sets(cfg)), capped_table)


def train(input_sdf, cfg: LinkageConfig, records: int, dialect: str) -> Linker:
    """Unsupervised training: prior from deterministic rules, u by sampling, m by EM per rule.

    Returns the trained linker. The model passes between steps as Splink's own model dict
    (``save_model_to_json`` and ``Linker(df, model)``), so each step edits only public data.
    Splink's warnings about levels absent from the training pairs end as one summary line.
    """
    with splink_warnings_summarised() as warnings:
        return _train(input_sdf, cfg, records, dialect, warnings)


def _train(input_sdf, cfg: LinkageConfig, records: int, dialect: str, warnings: TrainingWarnings) -> Linker:
    linker = Linker(input_sdf, model.training_settings(cfg, dialect), log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [blocking.rule_sql(r) for r in cfg.deterministic_rules], recall=cfg.recall
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=cfg.u_max_pairs, seed=cfg.seed)
    pooled_model, pooled = model.pool_household_u(linker.misc.save_model_to_json())
    log.info("link: u of the whole agreement given to %d household-aware level(s): %s", len(pooled), pooled)
    linker = Linker(input_sdf, pooled_model, log_level=None)
    # Splink counts a rule's pairs on this share of the records to decide how far to sample for
    # em_max_pairs; its default 1% finds few or no pairs to count on in small data.
    probe = min(1.0, max(0.01, EM_PROBE_RECORDS / max(records, 1)))
    trained = 0
    for rule in cfg.training_blocking_rules:
        sql = blocking.rule_sql(rule)
        # Splink's EM session removes the comparisons a rule uses up, and sets a blocking-adjusted
        # prior, on the linker's own model before it trains, and restores them only on success:
        # a rule that raises leaves that model changed, so training goes on from the model before it.
        before = linker.misc.save_model_to_json()
        warnings.step(sql)
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                sql, max_pairs=cfg.em_max_pairs, record_sample_proportion=probe
            )
            trained += 1
        except EMTrainingException as exc:
            # a source set without, say, e-mail addresses gives that rule no pairs: skip it, the
            # other rules still estimate the model (checked below)
            linker = Linker(input_sdf, before, log_level=None)
            log.warning("training blocking rule %r skipped: it pairs no records in this data (%s)", rule, exc)
        except ValueError as exc:
            if _UNDERFLOW in str(exc):
                # EM drove a level's m (or u) to 0 under this rule's pairs: Splink refuses the value,
                # so the rule's estimates are dropped and the other rules train the model
                linker = Linker(input_sdf, before, log_level=None)
                log.warning("training blocking rule %r skipped: expectation maximisation over its pairs failed (%s)", rule, exc)
                continue
            raise LinkageError(
                f"expectation maximisation over training blocking rule {rule!r} failed: {exc}. "
                "Check that the rule pairs mostly matching records and that the comparisons' levels "
                "occur in the data, or change linkage.training_blocking_rules"
            ) from exc
    if not trained:
        raise LinkageError(
            "no training blocking rule paired any records, so the model cannot be estimated; "
            "change linkage.training_blocking_rules to rules on columns this data has"
        )
    return linker


def save_trained(linker: Linker, cfg: LinkageConfig, lake_root: str, meta: dict[str, Any]) -> model.SavedModel:
    """Write the next model version with its match-weight chart and parameter summary."""
    splink_model = linker.misc.save_model_to_json()
    rows = model.parameter_records(splink_model)
    meta = dict(
        meta,
        fingerprint=model.fingerprint(cfg),
        attributes=cfg.attributes,
        training_procedure=model.TRAINING_PROCEDURE,
        recall=cfg.recall,
        probability_two_random_records_match=splink_model["probability_two_random_records_match"],
        linkage=cfg.model_dump(mode="json"),
    )
    chart = linker.visualisations.match_weights_chart().to_html(inline=True)
    parameters = {
        "probability_two_random_records_match": meta["probability_two_random_records_match"],
        "trained_at": meta["trained_at"],
        "records": meta["records"],
        "levels": rows,
    }
    artefacts: dict[str, str | Callable[[dict[str, Any]], str]] = {
        "match_weights.html": chart,
        "parameters.json": json.dumps(parameters, indent=2, default=str),
        "parameters.md": lambda final: model.summary_markdown(final, rows),
    }
    return model.ModelStore(lake_root).save(splink_model, meta, artefacts)


def linker_for(
    input_sdf, cfg: LinkageConfig, saved: model.SavedModel, dialect: str, *, for_explain: bool = False
) -> Linker:
    """A linker scoring with a saved model's parameters, rendered for this backend's SQL."""
    settings = model.settings_creator(cfg, for_explain=for_explain).create_settings_dict(dialect)
    return Linker(input_sdf, model.apply_parameters(settings, saved.splink_model), log_level=None)


def train_or_load(
    backend: LinkageBackend,
    input_sdf,
    link_cfg: LinkageConfig,
    lake_root: str,
    records: int,
    run_id: str,
    force_retrain: bool,
    at: datetime,
) -> tuple[Linker, model.SavedModel, bool]:
    """The latest saved model under ``lake_root``, or a newly trained and saved one when retraining
    is asked for, none exists yet, the comparisons or the mapped attributes it was built from
    changed, or it was trained by an older procedure. Returns (linker, model, trained)."""
    latest = model.ModelStore(lake_root).latest()
    reason = None
    if force_retrain:
        reason = "retraining was forced"
    elif link_cfg.retrain:
        reason = "linkage.retrain is true"
    elif latest is None:
        reason = "no saved model yet"
    elif latest.meta.get("fingerprint") != model.fingerprint(link_cfg):
        reason = f"linkage.comparisons changed since model v{latest.version:04d} was trained"
    elif latest.meta.get("attributes") != link_cfg.attributes:
        reason = (
            f"model v{latest.version:04d} was built from attributes {latest.meta.get('attributes')}, "
            f"the customer sources now map {link_cfg.attributes}"
        )
    elif latest.meta.get("training_procedure", 1) < model.TRAINING_PROCEDURE:
        reason = (
            f"model v{latest.version:04d} was trained by an older procedure "
            f"({latest.meta.get('training_procedure', 1)} < {model.TRAINING_PROCEDURE}: see model.TRAINING_PROCEDURE)"
        )
    if reason is None and latest is not None:
        log.info("link: reusing linkage model v%04d (%s)", latest.version, latest.path)
        return linker_for(input_sdf, link_cfg, latest, backend.dialect), latest, False
    log.info("link: training a new linkage model: %s", reason)
    linker = train(input_sdf, link_cfg, records, backend.dialect)
    meta = {"trained_at": at.isoformat(), "run_id": run_id, "backend": backend.name, "records": records}
    saved = save_trained(linker, link_cfg, lake_root, meta)
    # Score through the same path as a reused model, so a fresh and a loaded model agree exactly.
    return linker_for(input_sdf, link_cfg, saved, backend.dialect), saved, True


def pair_columns(cfg: LinkageConfig) -> list[str]:
    """``silver/pairs`` columns as SQL both engines run: keys, scores, and per comparison its
    partial match weight ``mw_<comparison>`` (log2 Bayes factor, term-frequency adjustment
    included), which says why a pair scored as it did."""
    cols = [
        "cast(record_key_l as string) as record_key_l",
        "cast(record_key_r as string) as record_key_r",
        "cast(match_probability as double) as match_probability",
        "cast(match_weight as double) as match_weight",
    ]
    for c in cfg.comparisons:
        name = model.comparison_name(c)
        weight = f"mw_{name}"
        if model.has_tf_adjustment(c):
            weight = f"{weight} + coalesce(mw_tf_adj_{name}, 0)"
        cols.append(f"cast({weight} as double) as mw_{name}")
    cols.append("cast(match_key as string) as match_key")
    return cols


CLUSTER_COLUMNS = [
    "cast(record_key as string) as record_key",
    "cast(source as string) as source",
    "cast(source_record_id as string) as source_record_id",
    "cast(cluster_id as string) as cluster_id",
]


def _empty_pairs(spark: SparkSession) -> DataFrame:
    fields = [
        StructField("record_key_l", StringType()),
        StructField("record_key_r", StringType()),
        StructField("match_probability", DoubleType()),
        StructField("match_weight", DoubleType()),
        StructField(crossref.FLAG_COLUMN, BooleanType()),
    ]
    return spark.createDataFrame([], StructType(fields))


def _check_records(lake) -> int:
    if not lake.exists(RECORDS_TABLE):
        raise MissingTableError(f"table {RECORDS_TABLE} does not exist under {lake.root}: run the standardise stage first")
    df = lake.read(RECORDS_TABLE)
    types = {f.name: f.dataType for f in df.schema.fields}
    if "date_of_birth" in types and not isinstance(types["date_of_birth"], DateType):
        raise LinkageError(
            f"{RECORDS_TABLE}.date_of_birth is {types['date_of_birth'].simpleString()}, the linkage model needs a "
            "date: standardisation should parse it (so no backend-specific date format is needed)"
        )
    return df.count()


ENTITY_MAP_CHANGES = MergeSpec(
    keys=(("record_key", "record_key"),),
    update=tuple((c, f"s.{identifier(c)}") for c in schema.ENTITY_MAP_SCHEMA.fieldNames()),
    update_condition=" OR ".join(
        f"NOT (t.{identifier(c)} <=> s.{identifier(c)})" for c in schema.ENTITY_MAP_SCHEMA.fieldNames() if c != "run_id"
    ),
    delete_unmatched=True,
)


def oversized_clusters(
    clusters: DataFrame, max_size: int, listed: int = 10, examples: int = 5
) -> tuple[int, list[dict[str, Any]]]:
    """How many clusters hold more than ``max_size`` records, and the ``listed`` largest with the
    size and a few record keys each (a stage-boundary check: one small action when none is too
    big; record keys are gathered for the listed clusters only)."""
    big = clusters.groupBy("cluster_id").agg(F.count(F.lit(1)).alias("size")).where(F.col("size") > max_size)
    rows = [r.asDict() for r in big.orderBy(F.desc("size"), "cluster_id").limit(listed).collect()]
    if not rows:
        return 0, []
    total = len(rows) if len(rows) < listed else big.count()
    keys = (
        clusters.where(F.col("cluster_id").isin(*[r["cluster_id"] for r in rows]))
        .groupBy("cluster_id")
        .agg(F.slice(F.sort_array(F.collect_list("record_key")), 1, examples).alias("examples"))
        .collect()  # at most `listed` rows
    )
    shown = {r["cluster_id"]: r["examples"] for r in keys}
    return total, [{**r, "examples": shown[r["cluster_id"]]} for r in rows]


def _cross_references(lake: Lake, summary: RunSummary, figures: dict[str, Any]) -> tuple[DataFrame, int]:
    """This run's cross-referenced pairs (cached) and their count; references that name no
    present record are counted and reported (a stage-boundary check: two small actions)."""
    pairs, dangling = crossref.cross_reference_pairs(lake.read(RECORDS_TABLE))
    pairs = pairs.persist()
    n = pairs.count()
    rows = [r.asDict() for r in dangling.orderBy(F.desc("references")).collect()]  # one row per source pair
    figures.update(cross_references=n, dangling_references=sum(r["references"] for r in rows))
    if rows:
        summary.warn(crossref.dangling_message(rows))
    if n:
        log.info("link: %s pair(s) joined by cross-reference columns", f"{n:,}")
    return pairs, n


def _weak_chains(
    found: DataFrame, clusters: DataFrame, pairs: DataFrame, cfg: LinkageConfig, summary: RunSummary
) -> tuple[DataFrame, DataFrame, int]:
    """Clusters and steward edges after the weak chains ``found`` (cached; see
    :mod:`cdi.silver.linkage.chains`), and how many bridges there were (a stage-boundary check:
    one small action, a count only when more than the listed few exist). Split mode cuts them
    and leaves the cut pairs out of the edges steward decisions rebuild clusters from, so a
    decision elsewhere in the cluster does not join the parts again."""
    cut = chains.bridges(found)
    listed = 3
    shown = [r.asDict() for r in cut.orderBy("match_probability", "record_key_l").limit(listed).collect()]
    total = len(shown) if len(shown) < listed else cut.count()
    if not total:
        return clusters, pairs, 0
    summary.warn(chains.chains_message(total, shown, cfg.weak_chains))
    if cfg.weak_chains != "split":
        return clusters, pairs, total
    keys = ["record_key_l", "record_key_r"]
    return chains.split_at(clusters, found), pairs.join(cut.select(*keys), keys, "left_anti"), total


def write_entity_map(lake: Lake, entity_map: DataFrame) -> None:
    """Bring ``silver/entity_map`` to this run's assignment in one MERGE: only records whose
    customer (or id lineage) changed are updated, so each row's ``run_id`` is the run that last
    assigned it and the Change Data Feed shows exactly the moves; records gone from the sources
    are deleted."""
    if lake.exists(ENTITY_MAP_TABLE):
        lake.merge(ENTITY_MAP_TABLE, entity_map, ENTITY_MAP_CHANGES, operation="ASSIGN IDS")
    else:
        lake.write(ENTITY_MAP_TABLE, entity_map, mode="overwrite", operation="ASSIGN IDS")


def run_link(
    lake: Lake,
    link_cfg: LinkageConfig,
    run_id: str,
    summary: RunSummary | None = None,
    *,
    force_retrain: bool = False,
    at: datetime | None = None,
    cross_references: bool = True,
) -> LinkResult:
    """Run the link stage on ``lake`` with the linkage settings; return its figures (records,
    pairs, clusters, backend, seconds per step). The model is saved under the lake's root.
    ``cross_references`` false (no customer source declares ``references``) skips their check."""
    spark = lake.spark
    model.validate(link_cfg)
    summary = summary or RunSummary(run_id=run_id)
    at = at or datetime.now(UTC).replace(tzinfo=None)
    lake = lake.with_context(job=STAGE, run_id=run_id)
    figures: dict[str, Any] = {"run_id": run_id, "seconds": {}}
    steps = []

    with summary.step(STAGE, "count records") as st:
        records = _check_records(lake)
        st.rows = records
        steps.append(st)
    backend_name, why = choose_backend(link_cfg, spark.sparkContext.master or "", records)
    log.info("link: backend %s: %s", backend_name, why)
    figures.update(records=records, backend=backend_name, backend_reason=why)

    backend = make_backend(backend_name, spark) if records else None
    xref_pairs: DataFrame | None = None
    found: DataFrame | None = None
    try:
        if backend is None:
            pairs_df = _empty_pairs(spark)
            clusters_df = spark.createDataFrame([], "record_key string, source string, source_record_id string, cluster_id string")
            figures.update(pairs=0, clusters=0, model_version=None, trained=False, capped_keys=[])
        else:
            with summary.step(STAGE, f"prepare input ({backend.name})") as st:
                prepared = prepared_input(backend, lake, link_cfg)
                input_sdf, capped = prepared.table, prepared.capped
                st.rows = records
                st.details["capped_keys"] = len(capped)
                steps.append(st)
            with summary.step(STAGE, "model") as st:
                linker, saved, trained = train_or_load(
                    backend, input_sdf, link_cfg, lake.root, records, run_id, force_retrain, at
                )
                st.details.update(version=f"v{saved.version:04d}", trained=trained)
                steps.append(st)
            with summary.step(STAGE, "predict") as st:
                predictions = linker.inference.predict(
                    threshold_match_probability=link_cfg.predict_threshold, warning_mode="never"
                )
                st.rows = predicted = backend.query(f"select count(*) as n from {predictions.physical_name}")[0]["n"]
                steps.append(st)
            n_xref = 0
            if cross_references:
                with summary.step(STAGE, "cross-references") as st:
                    xref_pairs, n_xref = _cross_references(lake, summary, figures)
                    st.rows = n_xref
                    steps.append(st)
            with summary.step(STAGE, "cluster") as st:
                edges = predictions
                if xref_pairs is not None and n_xref:
                    xref_table = backend.from_spark(xref_pairs, "cdi_cross_references")
                    edges = backend.materialise(
                        f"select record_key_l, record_key_r, match_probability from {predictions.physical_name} "
                        f"union all select record_key_l, record_key_r, cast(1.0 as double) from {xref_table}",
                        "cdi_link_edges",
                    )
                clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
                    edges, threshold_match_probability=link_cfg.cluster_threshold
                )
                st.rows = backend.query(f"select count(distinct cluster_id) as n from {clusters.physical_name}")[0]["n"]
                steps.append(st)
            columns = [c.split(" as ")[-1] for c in pair_columns(link_cfg)]
            pairs_df = backend.to_spark(predictions, pair_columns(link_cfg))
            if xref_pairs is not None and n_xref:
                pairs_df = crossref.with_cross_references(pairs_df, xref_pairs, columns)
            else:
                pairs_df = pairs_df.withColumn(crossref.FLAG_COLUMN, F.lit(False))
            clusters_df = backend.to_spark(clusters, CLUSTER_COLUMNS)
            figures.update(
                pairs=predicted,
                clusters=steps[-1].rows,
                model_version=saved.version,
                model_path=saved.path,
                trained=trained,
                capped_keys=capped,
            )

        steward_edges = pairs_df
        if backend is not None and link_cfg.weak_chains != "off":
            with summary.step(STAGE, "weak chains") as st:
                found = chains.weak_chains(clusters_df, pairs_df, link_cfg.cluster_threshold).persist()
                clusters_df, steward_edges, st.rows = _weak_chains(found, clusters_df, pairs_df, link_cfg, summary)
                figures["weak_chains"] = st.rows
                steps.append(st)

        decisions = read_decisions(lake)
        if decisions is not None:
            with summary.step(STAGE, "steward decisions") as st:
                clusters_df, report = apply_decisions(clusters_df, steward_edges, decisions, link_cfg.cluster_threshold)
                st.rows = report.links + report.separations
                st.details.update(clusters_rebuilt=report.clusters_rebuilt, records_regrouped=report.records_moved)
                steps.append(st)
            figures["steward"] = report.as_dict()
            for conflict in report.conflicts:
                summary.warn(f"steward: {conflict}; the separation stands (revoke one of the two decisions)")

        oversized, largest = oversized_clusters(clusters_df, link_cfg.max_cluster_size)
        figures.update(oversized_clusters=oversized, largest_clusters=largest)
        if oversized:
            shown = "; ".join(f"{c['size']} records ({', '.join(c['examples'])}, ...)" for c in largest[:3])
            summary.warn(
                f"link: {oversized} cluster(s) hold more than linkage.max_cluster_size={link_cfg.max_cluster_size} "
                f"records, the largest: {shown}. One person rarely has that many records: look for a shared "
                "placeholder value (a default e-mail or phone) or a chain of weak links (`cdi explain` on two of them)"
            )

        with summary.step(STAGE, "stable ids") as st:
            previous = lake.read_or_empty(ENTITY_MAP_TABLE, schema.ENTITY_MAP_SCHEMA)
            assignment = assign_customer_ids(clusters_df, previous, run_id, at, seed=link_cfg.seed).persist()
            events = assignment.events.persist()
            n_events = events.count()
            by_type = {}
            if n_events:
                counts = events.groupBy("event_type").agg(F.count(F.lit(1)).alias("n")).collect()
                by_type = {r["event_type"]: r["n"] for r in counts}
            # the events and the map they describe land together or not at all
            with lake.transaction("stable ids", [ID_HISTORY_TABLE, ENTITY_MAP_TABLE]) as tx:
                if n_events:
                    tx.write(ID_HISTORY_TABLE, events, mode="append", operation="ID EVENTS")
                write_entity_map(tx, assignment.entity_map)
            events.unpersist()
            assignment.unpersist()
            st.rows = records
            st.details.update(events=n_events)
            steps.append(st)
        figures["id_events"] = by_type

        with summary.step(STAGE, "write pairs") as st:
            lake.write(
                PAIRS_TABLE,
                pairs_df.withColumn("run_id", F.lit(run_id)),
                mode="overwrite",
                allow_new_columns=True,
                operation="SCORE PAIRS",
            )
            st.rows = figures["pairs"]
            steps.append(st)
    finally:
        if xref_pairs is not None:
            xref_pairs.unpersist()
        if found is not None:
            found.unpersist()
        if backend is not None:
            backend.close()

    figures["seconds"] = {st.name: round(st.seconds, 3) for st in steps}
    log.info(
        "link: %s records, %s pairs >= %s, %s clusters on %s",
        f"{records:,}",
        f"{figures['pairs']:,}",
        link_cfg.predict_threshold,
        f"{figures['clusters']:,}",
        backend_name,
    )
    return LinkResult(**figures)
