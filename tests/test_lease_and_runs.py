"""One writer at a time and runs that are one unit: the lease on the lake (taken, refused with
the holder named, expired, taken over from a dead process, lost) and the roll back of a run's
silver and gold commits (bronze kept)."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta

import pytest

from cdi.errors import LeaseHeldError, LeaseLostError, RecoveryError, exit_code
from cdi.lake import Lake, TableNotFoundError
from cdi.lake.lease import DONE, LAKE_COMMITTED, Lease
from cdi.lake.runs import COMPLETED, DIED_ROLLED_BACK, RUNS_TABLE, RunJournal

SIMPLE = "id long, grp string"


@pytest.fixture()
def lake(spark, lake_root) -> Lake:
    return Lake(spark, str(lake_root), job="test", run_id="r0", engine="delta-spark")


def rows(lake: Lake, table: str, version: int | None = None) -> list[tuple]:
    return sorted(tuple(r) for r in lake.read(table, version=version).collect())


def test_a_second_writer_is_refused_at_once_naming_the_holder(lake):
    first = Lease(lake, "run-a", "cdi run")
    with first.held():
        with pytest.raises(LeaseHeldError, match=r"in use by run run-a \(cdi run on .+:\d+, since .*Wait for it") as err:
            Lease(lake, "run-b", "cdi run").acquire()
        assert exit_code(err.value) == 2
    # given back: the next run takes it without waiting
    second = Lease(lake, "run-b", "cdi run")
    second.acquire()
    assert second.taken_over is None and second.current()["run_id"] == "run-b"
    second.release()
    assert second.current()["state"] == DONE


def test_an_expired_lease_is_taken_over_and_its_holder_stops_at_the_next_check(lake):
    stale = Lease(lake, "run-a", "cdi ingest", ttl=timedelta(seconds=3))
    stale.acquire()  # and never renewed: as if its machine was switched off
    time.sleep(3.5)
    new = Lease(lake, "run-b", "cdi run")
    new.acquire()
    assert new.taken_over["run_id"] == "run-a" and new.taken_over["state"] == "running"
    assert stale.renew() is False
    with pytest.raises(LeaseLostError, match="run run-a lost the lease .* to run run-b"):
        stale.check()
    stale.release()  # leaves the new holder's lease alone
    assert new.current()["run_id"] == "run-b"
    new.release()


def test_the_lease_of_a_process_that_is_gone_is_taken_over_at_once(lake):
    gone = Lease(lake, "run-dead", "cdi run", ttl=timedelta(hours=1))
    gone.holder = f"{gone.holder.rpartition(':')[0]}:{_pid_of_finished_process()}"
    gone.acquire()
    new = Lease(lake, "run-next", "cdi run")
    new.acquire()  # the hour is not waited for: the holder's process no longer exists
    assert new.taken_over["run_id"] == "run-dead"
    new.release()


def _pid_of_finished_process() -> int:
    proc = subprocess.Popen(["sleep", "0"])
    proc.wait()
    return proc.pid


def test_the_lease_is_renewed_in_the_background(lake):
    lease = Lease(lake, "run-a", "cdi run", ttl=timedelta(seconds=9))
    with lease.held():
        first = lease.current()["expires_at"]
        time.sleep(10)  # longer than the ttl: only renewals (every 3 s) keep it
        assert lease.current()["expires_at"] > first
        lease.check()
        with pytest.raises(LeaseHeldError):
            Lease(lake, "run-b", "cdi run").acquire()


def _write(lake: Lake, run_id: str, table: str, data: list[tuple], mode: str = "append") -> None:
    w = lake.with_context(job="test", run_id=run_id)
    w.write(table, lake.spark.createDataFrame(data, SIMPLE), mode=mode)


def test_rolling_back_a_run_restores_silver_and_gold_and_keeps_bronze(lake):
    _write(lake, "r0", "silver/work", [(1, "a")])
    _write(lake, "r0", "bronze/_work", [(1, "a")])
    _write(lake, "r1", "silver/work", [(2, "b")], mode="overwrite")
    _write(lake, "r1", "gold/work", [(2, "new")])  # created by the run
    _write(lake, "r1", "bronze/_work", [(2, "b")])
    restored = RunJournal(lake).roll_back("r1")
    assert restored == {"silver/work": 0, "gold/work": -1}
    assert rows(lake, "silver/work") == [(1, "a")]
    assert rows(lake, "gold/work") == []
    assert rows(lake, "bronze/_work") == [(1, "a"), (2, "b")]  # exactly-once ingest: kept
    # a second roll back (e.g. the first was killed) changes nothing
    assert RunJournal(lake).roll_back("r1").keys() == restored.keys()
    assert rows(lake, "silver/work") == [(1, "a")]


def test_a_roll_back_stops_when_another_run_wrote_after_it(lake):
    _write(lake, "r0", "silver/scores", [(1, "a")])
    _write(lake, "r1", "silver/scores", [(2, "b")])
    _write(lake, "r2", "silver/scores", [(3, "c")])
    with pytest.raises(RecoveryError, match=r"silver/scores: version 2 was written after it by r2.*RESTORE TABLE"):
        RunJournal(lake).roll_back("r1")


def test_a_dead_run_is_rolled_back_or_completed_by_how_far_it_got(lake):
    _write(lake, "r0", "gold/summary", [(1, "a")])
    _write(lake, "r1", "gold/summary", [(2, "b")])
    journal = RunJournal(lake)
    dead = {"run_id": "r1", "state": "running", "command": "cdi run", "holder": "h:1", "acquired_at": None}
    assert journal.recover(dead).outcome == DIED_ROLLED_BACK
    assert rows(lake, "gold/summary") == [(1, "a")]
    _write(lake, "r2", "gold/summary", [(3, "c")])
    done = journal.recover({**dead, "run_id": "r2", "state": LAKE_COMMITTED})
    assert done.outcome == COMPLETED and rows(lake, "gold/summary") == [(1, "a"), (3, "c")]
    outcomes = {r["run_id"]: r["outcome"] for r in lake.read(RUNS_TABLE).collect()}
    assert outcomes == {"r1": DIED_ROLLED_BACK, "r2": COMPLETED}


def test_readers_see_silver_and_gold_as_the_last_finished_run_left_them(lake, spark):
    """While a run is unfinished its commits are hidden from readers (a table it created does
    not exist for them yet); bronze is not hidden; once it gave the lease back, all is seen."""
    lake.with_context(run_id="run-a").write("gold/t", spark.createDataFrame([(1, "a")], SIMPLE))
    reader = lake.for_readers()
    assert rows(reader, "gold/t") == [(1, "a")]

    run_b = Lease(lake, "run-b", "cdi run")
    run_b.acquire()
    writer = lake.with_context(run_id="run-b")
    writer.write("gold/t", spark.createDataFrame([(2, "b")], SIMPLE))
    writer.write("gold/t", spark.createDataFrame([(3, "b")], SIMPLE))
    writer.write("gold/new", spark.createDataFrame([(9, "b")], SIMPLE))
    writer.write("bronze/_src", spark.createDataFrame([(7, "b")], SIMPLE))
    assert rows(reader, "gold/t") == [(1, "a")]
    assert not reader.exists("gold/new")
    with pytest.raises(TableNotFoundError, match="being created by run run-b"):
        reader.read("gold/new")
    assert rows(reader, "bronze/_src") == [(7, "b")]
    assert rows(lake, "gold/t") == [(1, "a"), (2, "b"), (3, "b")]  # a writer's view is the latest
    assert rows(reader, "gold/t", version=1) == [(1, "a"), (2, "b")]  # time travel is not pinned

    run_b.mark(LAKE_COMMITTED)  # every table written: only outside targets are left
    assert rows(reader, "gold/t") == [(1, "a"), (2, "b"), (3, "b")] and reader.exists("gold/new")
    run_b.release()
    assert rows(lake.for_readers(), "gold/new") == [(9, "b")]
