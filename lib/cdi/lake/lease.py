"""One writer at a time: a lease on the lake, kept in the lake itself (``_cdi/lease``).

A command that writes (``cdi run``, a stage, ``cdi maintain``) takes the lease before its first
write and gives it back at the end; readers (notebooks, ``cdi customer show``, the service)
never need it. The lease is one row of a Delta table, changed only by ``MERGE`` with a
compare-and-set condition on the row the taker saw, so Delta's own optimistic concurrency
decides a race: of two runs starting together exactly one commits, the other sees the
winner and fails at once, naming it. Storing it as a table (not a lock file) makes it work
wherever the lake's Delta commits are safe, object stores included.

The holder renews the lease from a background thread (every third of ``ttl``); a holder that
stops renewing (killed, machine gone) loses it when it expires, or at once when its process is
gone on this host, and the next run takes over (and rolls back what the dead run left
unfinished, see :mod:`cdi.lake.runs`). A holder that finds its lease taken over stops at the
next stage boundary (:meth:`Lease.check`).

    >>> with Lease(lake, run_id="20261124T0600Z-ab12cd", command="cdi run").held():  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pyspark.sql.types import StringType, StructField, StructType

from cdi import schema
from cdi.errors import LakeError, LeaseHeldError, LeaseLostError
from cdi.sql import literal

from .engine import ConcurrentWriteError, MergeSpec

if TYPE_CHECKING:
    from . import Lake

log = logging.getLogger(__name__)

LEASE_TABLE = schema.LEASE
KEY = "lake"  # the table's only row
RUNNING, LAKE_COMMITTED, DONE = "running", "lake_committed", "done"
LEASE_SCHEMA = schema.LEASE_SCHEMA
_COLUMNS = tuple(f.name for f in LEASE_SCHEMA.fields)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def holder_name() -> str:
    """``host:pid`` of this process: who holds the lease, in words a person can act on."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_gone(holder: str) -> bool:
    """Whether ``holder`` (``host:pid``) names a process of this host that no longer runs."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lease:
    """The lease of one lake for one run (see the module docstring)."""

    def __init__(self, lake: Lake, run_id: str, command: str, ttl: timedelta = timedelta(minutes=10)):
        if ttl < timedelta(seconds=3):
            raise ValueError("a lease needs a ttl of at least 3 seconds")
        self.lake = lake.with_context(job="lease", run_id=run_id)
        self.run_id = run_id
        self.command = command
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self.holder = holder_name()
        self.taken_over: dict[str, Any] | None = None  # a dead holder's row, when this lease replaced its run
        self._lost: dict[str, Any] | None = None
        # the state the lease is given back with: ``running`` tells the next holder to roll this run back
        self.final_state = DONE
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # ------------------------------------------------------------------ reading
    def current(self) -> dict[str, Any] | None:
        """The lease row as it stands (None before any run took one)."""
        return lease_row(self.lake)

    @staticmethod
    def free(row: dict[str, Any] | None, now: datetime) -> bool:
        """Whether a lease row can be taken: none, given back, expired, or its holder's process is gone."""
        return row is None or row.get("state") == DONE or row["expires_at"] <= now or process_gone(row["holder"])

    # ------------------------------------------------------------------ taking and giving back
    def acquire(self) -> None:
        """Take the lease or raise :class:`LeaseHeldError` naming the live holder."""
        seen = self.current()
        now = _now()
        if not self.free(seen, now):
            raise self._held_error(seen)
        self._ensure_table()
        # compare-and-set: replace exactly the row seen (or insert when there was none)
        condition = "t.token = s.seen_token" if seen else "false"
        row = self._row(now, acquired_at=now)
        frame = self.lake.spark.createDataFrame([(*row, seen["token"] if seen else None)], _with_seen(LEASE_SCHEMA))
        spec = MergeSpec(
            keys=(("key", "key"),),
            update=tuple((c, f"s.{c}") for c in _COLUMNS),
            update_condition=condition,
        )
        try:
            self.lake.merge(LEASE_TABLE, frame, spec, operation="LEASE ACQUIRE")
        except ConcurrentWriteError:
            log.debug("lease: another writer committed first", exc_info=True)
        after = self.current()
        if after is None or after["token"] != self.token:
            raise self._held_error(after)
        if seen is not None and seen.get("state") != DONE:
            log.warning("lease: holder %s of run %s is gone; taking the lake over", seen["holder"], seen["run_id"])
            self.taken_over = seen
        log.info("lease: %s holds %s until %s (run %s)", self.holder, self.lake.root, after["expires_at"], self.run_id)

    def _update(self, operation: str, columns: tuple[str, ...], state: str | None = None, expire: bool = False) -> bool:
        """Update this holder's row (only while it is this holder's); whether it still is."""
        now = _now()
        row = self._row(now, acquired_at=None, state=state or RUNNING)
        frame = self.lake.spark.createDataFrame([(*row, None)], _with_seen(LEASE_SCHEMA))
        update = tuple((c, "s.heartbeat_at" if expire and c == "expires_at" else f"s.{c}") for c in columns)
        spec = MergeSpec(keys=(("key", "key"),), update=update, update_condition=f"t.token = {literal(self.token)}", insert=False)
        try:
            self.lake.merge(LEASE_TABLE, frame, spec, operation=operation)
        except ConcurrentWriteError:
            log.debug("lease: %s raced another commit", operation, exc_info=True)
        current = self.current()
        if current is None or current["token"] != self.token:
            self._lost = current or {}
            return False
        return True

    def renew(self) -> bool:
        """Push the expiry out by ``ttl``; False (and :meth:`check` raises) when the lease was lost."""
        return self._update("LEASE RENEW", ("heartbeat_at", "expires_at"))

    def mark(self, state: str) -> None:
        """Record how far the run got (``lake_committed``: every table written, publishing left)."""
        if not self._update(f"LEASE {state.upper()}", ("state", "heartbeat_at", "expires_at"), state=state):
            self.check()

    def release(self) -> None:
        """Give the lease back (expires now, with :attr:`final_state`); a lease already lost is
        left to its new holder."""
        if self._lost is not None:
            return
        try:
            self._update("LEASE RELEASE", ("state", "heartbeat_at", "expires_at"), state=self.final_state, expire=True)
        except Exception as exc:  # it expires by itself, and must never hide the run's own error
            log.warning("lease: could not release the lease (it expires by itself at the latest in %s): %s", self.ttl, exc)

    def check(self) -> None:
        """Raise :class:`LeaseLostError` when another run took the lake over (call between stages)."""
        if self._lost is not None:
            other = self._lost
            raise LeaseLostError(
                f"run {self.run_id} lost the lease on {self.lake.root} to run {other.get('run_id')} "
                f"({other.get('holder')}): it stopped renewing for longer than {self.ttl}; "
                "this run stops here and the new holder rolls back its unfinished work"
            )

    @contextmanager
    def held(self) -> Iterator[Lease]:
        """Hold the lease for the block, renewing it in the background."""
        self.acquire()
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="cdi-lease", daemon=True)
        self._renewer.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._renewer.join(timeout=self.ttl.total_seconds())
            self.release()

    # ------------------------------------------------------------------ internals
    def _renew_loop(self) -> None:
        interval = self.ttl.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    log.error("lease: %s was taken over; the run stops at the next stage boundary", self.lake.root)
                    return
            except Exception:  # a failed renewal is retried; the ttl leaves room for two more
                log.warning("lease: renewal failed; retrying in %.0f s", interval, exc_info=True)

    def _row(self, now: datetime, acquired_at: datetime | None, state: str = RUNNING) -> tuple:
        return (KEY, self.token, self.holder, self.run_id, self.command, state, acquired_at, now, now + self.ttl)

    def _ensure_table(self) -> None:
        if self.lake.exists(LEASE_TABLE):
            return
        try:
            self.lake.write(LEASE_TABLE, self.lake.spark.createDataFrame([], LEASE_SCHEMA), operation="LEASE CREATE")
        except LakeError:  # another run created it at the same moment: the MERGE decides
            if not self.lake.exists(LEASE_TABLE):
                raise

    def _held_error(self, row: dict[str, Any] | None) -> LeaseHeldError:
        if row is None:
            return LeaseHeldError(f"could not take the lease on {self.lake.root}: another run took it at the same moment")
        return LeaseHeldError(
            f"the lake {self.lake.root} is in use by run {row['run_id']} ({row['command']} on {row['holder']}, "
            f"since {row['acquired_at']} UTC, last heartbeat {row['heartbeat_at']} UTC): one writer at a time. "
            f"Wait for it to finish; if that process is gone, its lease expires at {row['expires_at']} UTC "
            "and the next run takes over"
        )


def lease_row(lake: Lake) -> dict[str, Any] | None:
    """The lake's lease row as it stands (None before any run took one); reading needs no lease."""
    if not lake.exists(LEASE_TABLE):
        return None
    rows = lake.read(LEASE_TABLE).where(f"key = {literal(KEY)}").collect()  # one row at most
    return rows[0].asDict() if rows else None


def unfinished_run(lake: Lake) -> str | None:
    """The run whose commits readers must not see yet: the lease holder's while it is still
    ``running`` (in flight, or dead and not yet healed). None once every table of the run is
    written (``lake_committed``), when it gave the lease back, or when no run ever took one."""
    row = lease_row(lake)
    return row["run_id"] if row is not None and row.get("state") == RUNNING else None


def _with_seen(base: StructType) -> StructType:
    return StructType([*base.fields, StructField("seen_token", StringType())])
