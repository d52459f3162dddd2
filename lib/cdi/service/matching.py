"""``POST /api/match``: who is this? One record typed at a desk, scored against every record the
lake knows, with the saved linkage model.

The record goes through the batch's own standardisation (:class:`~cdi.silver.one_record.RecordStandardiser`,
on a local Spark session the service starts once) and the batch's own model input
(:func:`~cdi.silver.linkage.stage.prepared_input` over the served ``silver/records``, capped block
keys included); Splink's ``predict_between`` then blocks and scores it against the records on
DuckDB, with term frequencies from all records, as a run would. Candidates are grouped by the
customer their record belongs to (``silver/entity_map``): the best pair per customer, with each
comparison's level and match weight.

The model's input is rebuilt when a newer snapshot of the lake is served or a newer model saved;
one record is matched at a time.

The SQL Splink's ``predict_between`` generates depends only on the model, the names of the two
input tables and the threshold, and generating it costs about 40 ms a request. So the first
request of a preparation (per threshold) runs it on two fixed-name tables and keeps the
statements it ran (:class:`_Compiled`); later requests fill the same two tables and run those
statements on DuckDB. The pairs are Splink's own (a test compares them with ``predict_between``'s).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import pyarrow as pa

from cdi import schema
from cdi.config import CdiConfig
from cdi.errors import ConfigError
from cdi.silver.linkage import blocking, model
from cdi.silver.linkage.backends import DuckDBBackend, LinkageBackend
from cdi.silver.linkage.stage import linker_for, model_input_sql, prepared_input
from cdi.sql import plain_identifier

from .snapshot import LakeSnapshot

RECORDS = schema.RECORDS

log = logging.getLogger(__name__)

_NEW = "__cdi_match_new"


class MatchUnavailable(ConfigError):
    """Matching cannot answer yet (no saved model, no records served, still starting)."""


class MatchBusy(MatchUnavailable):
    """Another request holds matching longer than a request waits (a preparation is running)."""


def _recording_api(con):
    """Splink's DuckDB API that can keep the statements it runs (``recorded``, when a list)."""
    from splink import DuckDBAPI

    class RecordingDuckDBAPI(DuckDBAPI):
        recorded: list[str] | None = None

        def _execute_sql_against_backend(self, final_sql: str):
            if self.recorded is not None:
                self.recorded.append(final_sql)
            return super()._execute_sql_against_backend(final_sql)

    return RecordingDuckDBAPI(connection=con)


class _SnapshotBackend(DuckDBBackend):
    """The DuckDB backend over a served snapshot: ``silver/records`` is the snapshot's table."""

    def __init__(self, con):
        LinkageBackend.__init__(self, None)  # type: ignore[arg-type]  # no Spark: nothing leaves DuckDB
        self.workdir = ""  # nothing is written: results stay in the snapshot's database
        self.con = con
        self._db_api = _recording_api(con)

    def load_records(self, lake, table: str, columns: list[str]) -> str:
        view = f"__cdi_records_{self.token}"
        self.con.execute(f"create or replace view {view} as select {', '.join(columns)} from records")
        return view


@dataclass(frozen=True)
class _Compiled:
    """What ``predict_between`` ran for one threshold: statements reading ``left`` (candidate
    records) and ``right`` (the new record) and writing the pairs to ``output``."""

    left: str
    right: str
    statements: tuple[str, ...]
    output: str


@dataclass
class _Prepared:
    key: tuple[int, int | None, int]  # the snapshot's database, its silver/records version, the model version
    model_version: int
    backend: _SnapshotBackend
    linker: Any
    input: Any
    capped_table: str
    link_cfg: Any
    schema: pa.Schema  # of the model's input columns in silver/records
    levels: dict[str, list[tuple[str, float]]]  # comparison -> (label, match weight) per level
    rules: list[str]  # the blocking rules' SQL over l. and r.
    seconds: float
    compiled: dict[float, _Compiled] = field(default_factory=dict)  # per threshold

    def release(self) -> None:
        """Drop this preparation's tables from the snapshot's database (it may stay served)."""
        con = self.backend.con
        try:
            self.linker.table_management.delete_tables_created_by_splink_from_db()
            token = self.backend.token
            for (name,) in con.execute("select table_name from duckdb_tables() where table_name like ?", [f"%{token}"]).fetchall():
                con.execute(f"drop table if exists {plain_identifier(name)}")
            con.execute(f"drop view if exists __cdi_records_{token}")
        finally:
            con.close()


def _tf_columns(settings: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for comparison in settings.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            column = level.get("tf_adjustment_column")
            if column and column not in out:
                out.append(column)
    return out


def _levels(settings: dict[str, Any]) -> dict[str, list[tuple[str, float]]]:
    """Per comparison, each level's label and match weight (log2 m/u; 0 for a level without
    trained m and u, such as the null and neutral levels)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for c in settings.get("comparisons", []):
        levels = []
        for level in c.get("comparison_levels", []):
            m, u = level.get("m_probability"), level.get("u_probability")
            weight = math.log2(m / u) if m and u else 0.0
            levels.append((level.get("label_for_charts") or level.get("sql_condition") or "", weight))
        out[c["output_column_name"]] = levels
    return out


class Matcher:
    """Real-time matching over the served snapshots (see the module)."""

    def __init__(self, cfg: CdiConfig, spark_factory: Callable[[], Any] | None = None):
        self.cfg = cfg
        self._spark_factory = spark_factory
        self._standardiser: Any = None
        self._prepared: _Prepared | None = None
        self._lock = threading.Lock()

    def _standardise(self, record: dict[str, Any], key: str) -> dict[str, Any]:
        if self._standardiser is not None and self._standardiser.planned_on != date.today():
            # the plan read current_date() when it was optimised (birth dates in the future, two-digit years)
            self._standardiser.close()
            self._standardiser = None
        if self._standardiser is None:
            from cdi.silver.one_record import RecordStandardiser

            started = time.monotonic()
            self._standardiser = RecordStandardiser(self._spark())
            log.info("match: standardisation planned in %.1fs", time.monotonic() - started)
        return self._standardiser(record, key)

    def _spark(self):
        if self._spark_factory is not None:
            return self._spark_factory()
        from cdi.pipeline import spark_settings
        from cdi.spark import build_session

        settings = spark_settings(self.cfg)
        # one record at a time: one core; no UI port taken next to the service's
        return build_session(replace(settings, master="local[1]", conf={**settings.conf, "spark.ui.enabled": "false"}))

    def _prepare(self, snapshot: LakeSnapshot) -> _Prepared:
        saved = model.ModelStore(self.cfg.lake_root).latest()
        if saved is None:
            raise MatchUnavailable(f"no trained linkage model under {self.cfg.lake_root}/models: run `cdi run` first")
        if not snapshot.has("records"):
            raise MatchUnavailable(f"silver/records is not served from {self.cfg.lake_root}: run `cdi run` first")
        current = self._prepared
        key = (id(snapshot.db), snapshot.versions.get(RECORDS), saved.version)
        if current is not None and current.key == key:  # other tables' versions (steward decisions) do not matter
            return current
        if current is not None:
            current.release()
            self._prepared = None
        started = time.monotonic()
        link_cfg = saved.linkage_config()
        backend = _SnapshotBackend(snapshot.cursor())
        prepared = prepared_input(backend, None, link_cfg, warn_capped=False)  # the run warned of them
        linker = linker_for(prepared.table, link_cfg, saved, backend.dialect)
        settings = linker.misc.save_model_to_json()  # the settings linker_for made, with the saved parameters
        for column in _tf_columns(settings):
            linker.table_management.compute_tf_table(column)
        columns = model.input_columns(link_cfg)
        schema = backend.con.sql(f"select {', '.join(columns)} from records limit 0").to_arrow_table().schema
        self._prepared = _Prepared(
            key=key, model_version=saved.version, backend=backend, linker=linker,
            input=prepared.table, capped_table=prepared.capped_table, link_cfg=link_cfg, schema=schema,
            levels=_levels(settings), rules=[blocking.rule_sql(r) for r in link_cfg.blocking_rules],
            seconds=time.monotonic() - started,
        )  # fmt: skip
        log.info("match: model v%04d over %s records prepared in %.1fs", saved.version, snapshot.versions.get(RECORDS),
                 self._prepared.seconds)  # fmt: skip
        return self._prepared

    def warm(self, snapshot: LakeSnapshot) -> None:
        """Start Spark, plan the standardisation and prepare the model's input ahead of the first request."""
        try:
            with self._lock:
                self._prepare(snapshot)
                self._standardise({"first_name": "warm"}, "desk:warm")
        except MatchUnavailable as exc:
            log.info("match: not ready: %s", exc)

    def match(
        self, snapshot: LakeSnapshot, record: dict[str, Any], limit: int = 10, min_probability: float = 0.01, wait_seconds: float = 10.0
    ) -> dict[str, Any]:
        """Candidate customers for ``record`` (canonical attributes), best first. A request that
        cannot start within ``wait_seconds`` (the model's input is being prepared) is told so."""
        timings: dict[str, float] = {}
        if not self._lock.acquire(timeout=wait_seconds):
            raise MatchBusy(f"matching is busy (preparing the model's input for a new snapshot); retry in {int(wait_seconds)} s")
        try:
            t0 = time.monotonic()
            prepared = self._prepare(snapshot)
            t1 = time.monotonic()
            key = f"desk:match-{uuid.uuid4().hex[:12]}"
            row = self._standardise(record, key)
            t2 = time.monotonic()
            pairs = self._score(prepared, row, min_probability)
            t3 = time.monotonic()
        finally:
            self._lock.release()
        timings.update(prepare=t1 - t0, standardise=t2 - t1, score=t3 - t2)
        candidates = self._candidates(snapshot, prepared, pairs, limit)
        timings["customers"] = time.monotonic() - t3
        cluster_threshold = prepared.link_cfg.cluster_threshold
        best = candidates[0]["match_probability"] if candidates else 0.0
        review_lower = self.cfg.service.review_lower
        decision = "match" if best >= cluster_threshold else ("possible match" if best >= review_lower else "new customer")
        shown = {k: v for k, v in row.items() if not k.startswith("_") and k not in ("record_key", "source", "source_record_id")}
        return {
            "decision": decision,
            "record": shown,
            "candidates": candidates,
            "model_version": prepared.model_version,
            "thresholds": {"match": cluster_threshold, "review": review_lower, "shown_from": min_probability},
            "seconds": {k: round(v, 4) for k, v in timings.items()},
        }

    def _score(
        self, prepared: _Prepared, row: dict[str, Any], min_probability: float, prefilter: bool = True, compiled: bool = True
    ) -> list[dict[str, Any]]:
        """The scored pairs of ``row`` (a silver/records row) with the records. ``prefilter``
        false hands Splink every record, ``compiled`` false calls ``predict_between`` afresh (the
        same pairs, slower: for checking)."""
        backend = prepared.backend
        arrow = pa.Table.from_pylist([{c: row.get(c) for c in prepared.schema.names}], schema=prepared.schema)
        raw = f"__cdi_match_raw_{backend.token}"
        backend.con.register(raw, arrow)
        try:
            if compiled and prefilter:
                return self._score_compiled(prepared, raw, min_probability)
            # Splink refuses a table name registered before, even once dropped: one name per record
            name = f"{_NEW}_{uuid.uuid4().hex[:12]}"
            new = backend.materialise(model_input_sql(raw, prepared.link_cfg, prepared.capped_table), name)
            made = [new]
            try:
                every = f"select * from {prepared.input.physical_name}"
                candidates = backend.materialise(self._candidate_sql(prepared, new.physical_name) if prefilter else every, f"{name}_candidates")
                made.append(candidates)
                predictions = prepared.linker.inference.predict_between(
                    candidates, new, threshold_match_probability=min_probability, warning_mode="never"
                )
                try:
                    return predictions.as_record_list()
                finally:
                    predictions.drop_table_from_database_and_remove_from_cache()
            finally:
                for table in made:
                    table.drop_table_from_database_and_remove_from_cache(force_non_splink_table=True)
        finally:
            backend.con.unregister(raw)

    @staticmethod
    def _candidate_sql(prepared: _Prepared, new_table: str) -> str:
        """The records some blocking rule pairs with the record in ``new_table``: only they go to
        Splink, which blocks and scores them as it would all of them (term frequencies stay those
        of all records); predict_between would otherwise join every record to its term
        frequencies per request (one scan of the records against the one new row, every rule at once)."""
        any_rule = " or ".join(f"({rule})" for rule in prepared.rules)
        paired = f"select l.{model.UNIQUE_ID} from {prepared.input.physical_name} l, {new_table} r where {any_rule}"
        return f"select * from {prepared.input.physical_name} where {model.UNIQUE_ID} in ({paired})"

    def _score_compiled(self, prepared: _Prepared, raw: str, min_probability: float) -> list[dict[str, Any]]:
        """``predict_between``'s pairs through the statements it ran the first time (see the module)."""
        backend, con = prepared.backend, prepared.backend.con
        done = prepared.compiled.get(min_probability)
        if done is None:
            # Splink refuses a name registered before, even after a failed attempt: a new one each time
            n = uuid.uuid4().hex[:12]
            right = backend.materialise(model_input_sql(raw, prepared.link_cfg, prepared.capped_table), f"__cdi_match_right_{n}")
            left = backend.materialise(self._candidate_sql(prepared, right.physical_name), f"__cdi_match_left_{n}")
            api = backend.db_api
            api.recorded = []
            try:
                predictions = prepared.linker.inference.predict_between(
                    left, right, threshold_match_probability=min_probability, warning_mode="never"
                )
                statements = tuple(api.recorded)
            except BaseException:
                for table in (left, right):
                    table.drop_table_from_database_and_remove_from_cache(force_non_splink_table=True)
                raise
            finally:
                api.recorded = None
            done = _Compiled(left.physical_name, right.physical_name, statements, predictions.physical_name)
            prepared.compiled[min_probability] = done
            log.info("match: predict_between's %d statements kept for threshold %s", len(statements), min_probability)
        else:
            con.execute(f"create or replace table {done.right} as {model_input_sql(raw, prepared.link_cfg, prepared.capped_table)}")
            con.execute(f"create or replace table {done.left} as {self._candidate_sql(prepared, done.right)}")
            for statement in done.statements:
                con.execute(statement)
        try:
            return backend.db_api.table_to_splink_dataframe(done.output, done.output).as_record_list()
        finally:
            con.execute(f"drop table if exists {done.output}")

    def _candidates(self, snapshot: LakeSnapshot, prepared: _Prepared, pairs: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
        from .desk import customer_summaries, summary_name

        def other(pair: dict[str, Any]) -> str:
            return pair["record_key_l"] if not str(pair["record_key_l"]).startswith("desk:match-") else pair["record_key_r"]

        keys = sorted({other(p) for p in pairs})
        owners: dict[str, str] = {}
        if keys and snapshot.has("entity_map"):
            marks = ", ".join("?" for _ in keys)
            cur = snapshot.cursor()
            owners = dict(cur.execute(f"SELECT record_key, customer_id FROM entity_map WHERE record_key IN ({marks})", keys).fetchall())
        best: dict[str, dict[str, Any]] = {}
        for pair in pairs:
            customer = owners.get(other(pair))
            if customer is None:
                continue
            seen = best.get(customer)
            if seen is None or pair["match_probability"] > seen["match_probability"]:
                best[customer] = pair
        ranked = sorted(best.items(), key=lambda kv: (-kv[1]["match_probability"], kv[0]))[:limit]
        summaries = customer_summaries(snapshot, [c for c, _ in ranked])
        out = []
        for customer_id, pair in ranked:
            summary = summaries.get(customer_id, {})
            out.append(
                {
                    "customer_id": customer_id,
                    "match_probability": round(float(pair["match_probability"]), 6),
                    "match_weight": round(float(pair["match_weight"]), 3),
                    "record_key": other(pair),
                    "name": summary_name(summary),
                    **{k: summary.get(k) for k in ("email", "phone", "city", "country")},
                    "explanation": self._explanation(prepared, pair),
                }
            )
        return out

    @staticmethod
    def _explanation(prepared: _Prepared, pair: dict[str, Any]) -> list[dict[str, Any]]:
        """Per comparison: the level the pair reached (the level of that match weight) and its
        match weight, term-frequency adjustment included, as Splink's waterfall chart shows them."""
        out = []
        for name, levels in prepared.levels.items():
            weight = pair.get(f"mw_{name}")
            if weight is None:
                continue
            adjustment = float(pair.get(f"mw_tf_adj_{name}") or 0.0)
            # levels of equal weight (the null and neutral ones, at 0) cannot be told apart: all are named
            reached = [label for label, w in levels if abs(w - float(weight)) < 1e-6]
            out.append(
                {
                    "comparison": name,
                    "level": " / ".join(reached) or None,
                    "match_weight": round(float(weight) + adjustment, 3),
                    "term_frequency_adjustment": round(adjustment, 3),
                }
            )
        return out
