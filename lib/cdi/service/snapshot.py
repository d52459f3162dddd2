"""The service's copy of the lake: the tables it serves, read without Spark, as of finished runs.

A run commits to one table after another, so a reader polling each table's latest version could
pair the new golden records with the old entity map. :func:`settled_version` picks, per table,
the newest version not made by the run the lake's lease says is still writing: that run is
invisible until it ends (or, dead, is rolled back by the next).

A :class:`LakeSnapshot` holds those versions in one in-memory DuckDB database (files listed by
``deltalake``, read by pyarrow; delta-rs's own scan is never used), plus the folded names of the
current customers for fuzzy search. :class:`SnapshotKeeper` polls for newer settled versions in
a background thread and swaps in a new snapshot; a request always works on one whole snapshot.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound

from cdi import schema
from cdi.config import join_path
from cdi.errors import LakeError
from cdi.lake.files import commit_actions, filesystem, local_path
from cdi.lake.lease import RUNNING

log = logging.getLogger(__name__)

# table in the lake -> name in the snapshot's database
SERVED_TABLES = {
    schema.GOLDEN_RECORDS: "golden",
    schema.RECORDS: "records",
    schema.ENTITY_MAP: "entity_map",
    schema.CUSTOMER_360: "customer_360",
    schema.CHANGES: "changes",
    schema.ID_HISTORY: "id_history",
    schema.FACTS: "facts",
    schema.PAIRS: "pairs",
    schema.STEWARD_DECISIONS: "decisions",
}
_INDEXED = {
    "golden": ("customer_id",),
    "records": ("record_key",),
    "entity_map": ("record_key", "customer_id"),
    "customer_360": ("customer_id",),
    "changes": ("customer_id",),
    "facts": ("record_key",),
    "pairs": ("record_key_l",),
}
_UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping"}
_SETTLE_DEPTH = 200  # commits looked back for one a finished run made


def _run_of(info: dict[str, Any]) -> str | None:
    """The cdi run a commit belongs to: delta-rs commits carry it as a key, delta-spark's in the
    commit's ``userMetadata`` JSON."""
    if info.get("cdi.run_id"):
        return str(info["cdi.run_id"])
    meta = info.get("userMetadata")
    if isinstance(meta, str) and meta.startswith("{"):
        try:
            return json.loads(meta).get("cdi.run_id") or None
        except ValueError:
            return None
    return None


def read_table(path: str, version: int | None = None) -> pa.Table:
    """One Delta snapshot as an Arrow table: the files ``deltalake`` lists, read by pyarrow, with
    the partition values from the log. Tables needing a reader feature this does not apply
    (deletion vectors, column mapping) fail with what to do."""
    dt = DeltaTable(path, version=version)
    features = set(dt.protocol().reader_features or ()) & _UNSUPPORTED_READER_FEATURES
    if dt.metadata().configuration.get("delta.columnMapping.mode", "none") != "none":
        features.add("columnMapping")
    if features:
        raise LakeError(
            f"table {path} uses {', '.join(sorted(features))}, which the service's reader does not apply; "
            "rewrite it without them (e.g. REORG TABLE ... APPLY (PURGE) and disable the feature)"
        )
    target = pa.schema(dt.schema().to_arrow())
    partitions = dt.metadata().partition_columns
    by_path: dict[str, dict[str, Any]] = {}  # typed values
    if partitions:
        actions = pa.table(dt.get_add_actions(flatten=True))
        paths = actions.column("path").to_pylist()
        columns = {p: actions.column(f"partition.{p}").to_pylist() for p in partitions}
        by_path = {unquote(rel): {p: columns[p][i] for p in partitions} for i, rel in enumerate(paths)}
    root = local_path(path).rstrip("/")
    fs, _ = filesystem(root)
    pieces = []
    for uri in dt.file_uris():
        where = local_path(uri)
        piece = pq.read_table(where, filesystem=fs, partitioning=None)
        values = by_path.get(where[len(root) + 1 :], {}) if partitions else {}
        for name in partitions:  # the log's value wins over a copy some writers keep in the file
            if name in piece.column_names:
                piece = piece.drop_columns([name])
            value, field_type = values.get(name), target.field(name).type
            column = (
                pa.nulls(piece.num_rows, field_type) if value is None else pa.array([value] * piece.num_rows).cast(field_type)
            )
            piece = piece.append_column(name, column)
        pieces.append(piece.select([n for n in target.names if n in piece.column_names]))
    if not pieces:
        return target.empty_table()
    table = pa.concat_tables(pieces, promote_options="permissive")
    missing = [f for f in target if f.name not in table.column_names]  # columns added after old files
    for f in missing:
        table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
    return table.select(target.names).cast(target)


def writing_run(lake_root: str) -> str | None:
    """The run the lake's lease says is still writing (state ``running``, alive or dead: a dead
    one's commits are rolled back by the next run), or None."""
    try:
        lease = read_table(join_path(lake_root, schema.LEASE)).to_pylist()
    except DeltaTableNotFound:
        return None
    running = [row["run_id"] for row in lease if row.get("state") == RUNNING and row.get("run_id")]
    return running[0] if running else None


def settled_version(path: str, writing: str | None) -> int | None:
    """The newest version of ``path`` that the run still writing did not make (None: no such
    table, or only that run has written it)."""
    try:
        latest = DeltaTable(path).version()
    except DeltaTableNotFound:
        return None
    if writing is None:
        return latest
    fs, base = filesystem(local_path(path))
    for version in range(latest, max(-1, latest - _SETTLE_DEPTH), -1):
        actions = commit_actions(fs, base, version)
        if actions is None:  # older commits are gone with log retention: none is that run's
            return version
        info: dict[str, Any] = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        if _run_of(info) != writing:
            return version
    return None


def settled_versions(lake_root: str) -> dict[str, int]:
    """Lake table -> the version the service shows, for the served tables that exist."""
    for _ in range(5):
        writing = writing_run(lake_root)
        out = {}
        for table in SERVED_TABLES:
            version = settled_version(join_path(lake_root, table), writing)
            if version is not None:
                out[table] = version
        if writing_run(lake_root) == writing:  # no run started while the versions were read
            return out
    return out


@dataclass
class LakeSnapshot:
    """The served tables at fixed versions in one DuckDB database, and the search names."""

    lake_root: str
    versions: dict[str, int]
    db: duckdb.DuckDBPyConnection
    loaded_at: float
    load_seconds: float
    names: list[str] = field(default_factory=list)  # folded full names of current customers
    name_ids: list[str] = field(default_factory=list)  # their customer ids, same order
    # name search's token index: each distinct token of the names, and the names holding it
    vocabulary: list[str] = field(default_factory=list)
    holders: dict[str, list[int]] = field(default_factory=dict)
    _reloading: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one request (DuckDB connections are not shared by threads)."""
        return self.db.cursor()

    def has(self, name: str) -> bool:
        return name in self.tables

    @property
    def tables(self) -> set[str]:
        return {SERVED_TABLES[t] for t in self.versions}

    def reload(self, table: str) -> None:
        """Replace one served table by its settled version now (after the service itself
        appended to it), in place: requests see the old or the new table, never a mix."""
        with self._reloading:  # two replacements of one table at once conflict in DuckDB
            version = settled_version(join_path(self.lake_root, table), writing_run(self.lake_root))
            if version is None or version == self.versions.get(table):
                return
            _load_table(self.db, self.lake_root, table, version)
            self.versions = {**self.versions, table: version}

    def columns(self, name: str) -> list[str]:
        if not self.has(name):
            return []
        return [r[0] for r in self.cursor().execute(f"DESCRIBE {name}").fetchall()]


def _load_table(db: duckdb.DuckDBPyConnection, lake_root: str, table: str, version: int) -> None:
    name = SERVED_TABLES[table]
    arrow = read_table(join_path(lake_root, table), version)
    cur = db.cursor()
    cur.register("_incoming", arrow)
    cur.execute("BEGIN TRANSACTION")
    for column in _INDEXED.get(name, ()):  # a table is replaced only without the indexes on it
        cur.execute(f"DROP INDEX IF EXISTS {name}_{column}")
    cur.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _incoming")
    for column in _INDEXED.get(name, ()):
        if column in arrow.column_names:
            cur.execute(f"CREATE INDEX {name}_{column} ON {name} ({column})")
    if name == "records":
        _build_lookup(cur, arrow.column_names)
    cur.execute("COMMIT")
    cur.unregister("_incoming")
    log.debug("snapshot: %s v%s, %s rows", table, version, arrow.num_rows)


# the forms a desk types, to one indexed column: "<kind>:<normalised value>" -> record key
_LOOKUP_FORMS = {
    "email": ("email", "lower(trim(email))"),
    "email_std": ("email", "email_std"),
    "phone": ("phone", "regexp_replace(CAST(phone AS VARCHAR), '[^0-9]', '', 'g')"),
    "phone_std": ("phone", "regexp_replace(CAST(phone_std AS VARCHAR), '[^0-9]', '', 'g')"),
    "national_id": ("national_id", "upper(regexp_replace(national_id, '[^0-9A-Za-z]', '', 'g'))"),
}


def _build_lookup(cur: duckdb.DuckDBPyConnection, columns: list[str]) -> None:
    """``lookup(key, record_key)``: every record's e-mail, phone and national id in the forms
    the search compares, behind one index, so an exact lookup is a probe, not a scan."""
    parts = [
        f"SELECT '{kind}:' || {expr} AS key, record_key FROM records WHERE {column} IS NOT NULL"
        for column, (kind, expr) in _LOOKUP_FORMS.items()
        if column in columns
    ]
    cur.execute("DROP INDEX IF EXISTS lookup_key")
    body = " UNION ".join(parts) if parts else "SELECT NULL::VARCHAR AS key, NULL::VARCHAR AS record_key WHERE false"
    cur.execute(f"CREATE OR REPLACE TABLE lookup AS {body}")
    cur.execute("CREATE INDEX lookup_key ON lookup (key)")


def load_snapshot(lake_root: str, versions: dict[str, int] | None = None, only: tuple[str, ...] | None = None) -> LakeSnapshot:
    """Read the served tables at ``versions`` (their settled versions when not given); ``only``
    some of them (``cdi steward`` needs the entity map, pairs and decisions, not the facts)."""
    from cdi.silver.standardise.text import fold_text

    started = time.monotonic()
    versions = settled_versions(lake_root) if versions is None else versions
    if only is not None:
        versions = {t: v for t, v in versions.items() if t in only}
    db = duckdb.connect(":memory:")
    db.execute("SET TimeZone = 'UTC'")
    for table, version in versions.items():
        _load_table(db, lake_root, table, version)
    names: list[str] = []
    ids: list[str] = []
    if schema.GOLDEN_RECORDS in versions:
        present = {r[0] for r in db.execute("DESCRIBE golden").fetchall()}
        parts = [c for c in ("first_name", "middle_name", "last_name") if c in present]
        built = f"concat_ws(' ', {', '.join(parts)})" if parts else "NULL"
        name = f"coalesce(full_name, {built})" if "full_name" in present else built
        rows = db.execute(f"SELECT customer_id, {name} FROM golden WHERE is_current ORDER BY customer_id").fetchall()
        for customer_id, name in rows:
            folded = fold_text(name)
            if folded:
                ids.append(customer_id)
                names.append(folded)
    elapsed = time.monotonic() - started
    log.info("serving %s (%s) after %.1f s", lake_root, ", ".join(f"{t} v{v}" for t, v in sorted(versions.items())), elapsed)
    holders: dict[str, list[int]] = {}
    for i, folded in enumerate(names):
        for token in set(folded.split()):
            holders.setdefault(token, []).append(i)
    return LakeSnapshot(lake_root, dict(versions), db, time.time(), elapsed, names, ids, sorted(holders), holders)


class SnapshotKeeper:
    """The current snapshot, replaced in the background when a run settles newer versions."""

    def __init__(self, lake_root: str, refresh_seconds: float, loader: Callable[..., LakeSnapshot] = load_snapshot):
        if not Path(local_path(lake_root)).exists() and "://" not in lake_root:
            raise LakeError(f"no lake at {lake_root}: run `cdi run --conf ...` first, or point lake_root at one")
        self.lake_root = lake_root
        self.refresh_seconds = refresh_seconds
        self._loader = loader
        self._current = loader(lake_root)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    @property
    def current(self) -> LakeSnapshot:
        return self._current

    def refresh(self) -> bool:
        """Load newer settled versions if there are any; whether the snapshot changed."""
        with self._lock:
            versions = settled_versions(self.lake_root)
            if versions == self._current.versions:
                return False
            self._current = self._loader(self.lake_root, versions)
            return True

    def start(self) -> None:
        if self._thread is None and self.refresh_seconds > 0:
            self._thread = threading.Thread(target=self._poll, name="cdi-snapshot", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
                self.last_error = None
            except Exception as exc:  # a half-vacuumed or unreachable lake: keep serving the last good snapshot
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("snapshot refresh failed, still serving the previous versions: %s", self.last_error)
