"""Spark jobs of one lake write, grouped so a failed write can wait for its stragglers.

When one task fails, Spark fails the job at once while the job's other tasks may still be
running and writing files. Cleaning up a write's files at that moment races them: a task that
ends after the cleanup leaves its part file behind. Both engines run their data writes inside
:func:`write_job_group` and clean up only after it returns.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

_GROUP = "spark.jobGroup.id"


@contextmanager
def write_job_group(sc, label: str, timeout: float = 60.0) -> Iterator[str]:
    """Run the block's Spark jobs in a job group; if it raises, cancel the group and wait until
    none of its tasks runs, then re-raise.

    A caller's own job group is kept (so the caller can still cancel the write) and is the
    group waited on.
    """
    previous = sc.getLocalProperty(_GROUP)
    group = previous or f"cdi-write-{uuid.uuid4().hex[:12]}"
    if not previous:
        sc.setJobGroup(group, f"cdi lake write {label}", interruptOnCancel=True)
    try:
        yield group
    except BaseException:
        if not previous:
            sc.cancelJobGroup(group)
        wait_for_group(sc, group, timeout)
        raise
    finally:
        if not previous:
            sc.setLocalProperty(_GROUP, None)  # None clears it


def wait_for_group(sc, group: str, timeout: float = 60.0) -> None:
    """Block until no task of the job group is running (bounded, so a stuck cluster cannot hang us)."""
    tracker = sc.statusTracker()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_stage_busy(tracker, job_id) for job_id in tracker.getJobIdsForGroup(group)):
            return
        time.sleep(0.1)
    log.warning("tasks of failed write %s still running after %.0fs; cleaning up anyway", group, timeout)


def _stage_busy(tracker, job_id: int) -> bool:
    """A job still marked running has not had its end processed by the status listener, which
    may lag the scheduler: its stages' task counts cannot be trusted yet."""
    job = tracker.getJobInfo(job_id)
    if job is None:
        return False
    if str(job.status).upper() == "RUNNING":
        return True
    for stage_id in job.stageIds:
        stage = tracker.getStageInfo(stage_id)
        if stage is not None and stage.numActiveTasks > 0:
            return True
    return False
