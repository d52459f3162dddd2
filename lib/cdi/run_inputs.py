"""What a run's silver and gold were computed from, so that a run with nothing new skips them.

A run takes the *inputs state* before its first silver stage: the version of every table in
the lake (bronze, silver, gold, steward decisions, privacy), a hash of the configuration that
shapes the results, of the installed code and the libraries that compute with it, of the
current linkage model, and the day (standardisation drops dates in the future and reads
two-digit years against today; customer 360's ages, recency and tenure count to it). It
records in ``_cdi/runs`` that state moved on only by its own commits and its own model: a table
someone else wrote meanwhile (a steward's decision while the run was linking) keeps the version
the run read, so the next run sees it changed. The next run compares the state it finds after
ingest with the last recorded one. Equal means no source delivered anything, no steward decided
anything, nobody erased, restored or rewrote a table, code, configuration and model are the
same and it is the same day: standardising, linking and gold would write what is already
there, so they are skipped.

The check errs one way on purpose. Any commit to any of those tables (an ``OPTIMIZE`` too)
counts as a change, and so does a table whose version cannot be read: a false "changed" costs
one recompute, a false "unchanged" would leave a customer stale. Left out are the lake's own
bookkeeping (``_cdi/*``) and the ingest ledger, which a poll of a JDBC source writes even when
it finds no new row. Secrets are masked before the configuration is hashed (the hash is stored
in the lake): rotating a password recomputes nothing, and a changed ``privacy`` hash key needs
``cdi run --full``.

    >>> before = inputs_state(lake, cfg)  # doctest: +SKIP
    >>> before.same(last_recorded(lake)[1])  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from pyspark.sql import functions as F

import cdi
from cdi import schema
from cdi.config import CdiConfig
from cdi.lake import Lake
from cdi.lake.runs import COMMITTED
from cdi.silver.linkage import ModelStore
from cdi.silver.linkage.model import read_text

log = logging.getLogger(__name__)

# configuration sections that change nothing silver or gold hold
NOT_SHAPING = frozenset({"spark", "demo", "service", "config_file"})
LIBRARIES = (
    "pyspark", "delta-spark", "deltalake", "splink", "duckdb", "phonenumbers", "python-stdnum", "pycountry",
    "unidecode", "rapidfuzz", "networkx", "pandas", "pyarrow",
)  # fmt: skip
IGNORED_TABLES = (schema.INGESTED_FILES,)
UNREADABLE = -1  # a table whose version could not be read: never equal to a version read later
NO_STATE = "no-state"  # what a part of the state is when it could not be taken: never equal to a real one


@dataclass(frozen=True)
class InputsState:
    """Everything silver and gold depend on, as cheap-to-read identifiers."""

    tables: dict[str, int]
    config: str
    code: str
    model: str | None  # "<version>:<hash of its files>"
    day: str

    def same(self, other: InputsState | None) -> bool:
        """Whether nothing changed; a part that could not be read never matches."""
        unread = NO_STATE in (self.model, self.day) or UNREADABLE in self.tables.values()
        return other is not None and not unread and self == other

    def after_run(self, committed: Mapping[str, int], model: str | None) -> InputsState:
        """This state (taken before the run's first silver stage) moved on by the run's own
        commits and model only: anyone else's write meanwhile stays a change."""
        tables = {**self.tables, **{t: v for t, v in committed.items() if _counted(t)}}
        return dataclasses.replace(self, tables=dict(sorted(tables.items())), model=model)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> InputsState | None:
        """The recorded state; None when absent or written in another form (then: recompute)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(
                tables={str(k): int(v) for k, v in data["tables"].items()}, config=str(data["config"]),
                code=str(data["code"]), model=None if data["model"] is None else str(data["model"]),
                day=str(data["day"]),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _counted(table: str) -> bool:
    return not table.startswith("_cdi/") and table not in IGNORED_TABLES


def inputs_state(lake: Lake, cfg: CdiConfig) -> InputsState:
    """The state now: one log lookup per table (no Spark job), a few hashes, one tiny query."""
    return InputsState(
        tables={t: _version(lake, t) for t in lake.tables() if _counted(t)},
        config=config_hash(cfg),
        code=code_hash(),
        model=model_state(cfg),
        day=today(lake),
    )


def _version(lake: Lake, table: str) -> int:
    try:
        return lake.version(table)
    except Exception as exc:  # a first commit cut short, a table being created, a foreign table
        log.info("%s: no readable version (%s): counted as changed", table, str(exc).splitlines()[0] if str(exc) else exc)
        return UNREADABLE


def config_hash(cfg: CdiConfig) -> str:
    """The configuration that shapes silver and gold (sources, linkage, survivorship, customer
    360, segments, propagation, privacy), its secrets masked, hashed."""
    shaping = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in NOT_SHAPING}
    text = cfg.redactor.text(json.dumps(shaping, sort_keys=True, default=str))
    return hashlib.sha256(text.encode()).hexdigest()


def code_hash() -> str:
    """The installed ``cdi`` package's files, Python's version and the versions of the libraries
    that compute with it: a new release or an edited checkout recomputes."""
    digest = hashlib.sha256(sys.version.encode())
    package = Path(cdi.__file__).resolve().parent
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    for name in LIBRARIES:
        try:
            digest.update(f"{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=absent".encode())
    return digest.hexdigest()


def model_state(cfg: CdiConfig) -> str | None:
    """The current linkage model: its version and a hash of its files (a folder replaced in
    place is a change); None when there is none yet."""
    store = ModelStore(cfg.lake_root)
    try:
        versions = store.versions()
        if not versions:
            return None
        folder = store.dir(versions[-1])
        files = read_text(f"{folder}/meta.json") + read_text(f"{folder}/model.json")
    except Exception as exc:
        log.info("linkage model unreadable (%s): counted as changed", exc)
        return NO_STATE
    return f"{versions[-1]}:{hashlib.sha256(files.encode()).hexdigest()}"


def today(lake: Lake) -> str:
    """Today as Spark's ``current_date()`` has it in this session's time zone, which is what
    standardisation and customer 360 compare with."""
    try:
        row = lake.spark.range(1).select(F.current_date()).first()
        return row[0].isoformat() if row is not None else NO_STATE
    except Exception as exc:
        log.info("could not read the session's date (%s): counted as changed", exc)
        return NO_STATE


def last_recorded(lake: Lake) -> tuple[str, InputsState] | None:
    """The run id and inputs state of the latest committed run that recorded one."""
    if not lake.exists(schema.RUNS) or "inputs" not in lake.schema(schema.RUNS).fieldNames():
        return None
    row = (
        lake.read(schema.RUNS)
        .where((F.col("outcome") == COMMITTED) & F.col("inputs").isNotNull())
        .orderBy(F.col("recorded_at").desc())
        .select("run_id", "inputs")
        .first()
    )
    if row is None:
        return None
    state = InputsState.from_json(row["inputs"])
    return None if state is None else (row["run_id"], state)


def describe_difference(now: InputsState, before: InputsState) -> str:
    """Why silver and gold are computed again, for the log: what changed since ``before``."""
    reasons: list[str] = []
    changed = sorted(t for t in set(now.tables) | set(before.tables) if now.tables.get(t) != before.tables.get(t))
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        reasons.append(f"table(s) written since: {shown}")
    words = {"config": "configuration", "code": "installed code or libraries", "model": "linkage model", "day": "a new day"}
    reasons += [said for name, said in words.items() if getattr(now, name) != getattr(before, name)]
    return "; ".join(reasons) or "a part of the state could not be read"
