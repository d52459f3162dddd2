"""Splink's per-level training warnings, summarised once.

Each EM session (one per training blocking rule) warns for every level it never sees among the
rule's pairs ("Level X on comparison Y not observed in dataset, unable to train m value"), one
multi-line warning each: dozens of lines on small or narrow data. During training they are
collected per rule and logged as one line naming each level and how many rules missed it;
Splink's other records pass through unchanged.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

_UNOBSERVED = re.compile(
    r"Level (?P<level>.+?) on comparison (?P<comparison>.+?) not observed in dataset, unable to train (?P<param>[mu]) value"
)


class TrainingWarnings(logging.Handler):
    """Collects the unobserved-level warnings of each training step (:meth:`step`)."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.current = "training"  # m warnings before the first step (none in cdi's training)
        self.rules: dict[str, set[str]] = {}  # EM rule -> levels it saw no pairs at
        self.u_levels: set[str] = set()

    def step(self, name: str) -> None:
        """Warnings from here on belong to the training step ``name`` (an EM rule)."""
        self.current = name
        self.rules.setdefault(name, set())

    def emit(self, record: logging.LogRecord) -> None:
        match = _UNOBSERVED.search(record.getMessage())
        if match is None:
            logging.getLogger().handle(record)  # everything else goes on as Splink logged it
            return
        level = f"{match['comparison']}: {match['level']}"
        if match["param"] == "u":
            self.u_levels.add(level)
        else:
            self.rules.setdefault(self.current, set()).add(level)

    def summary(self) -> str | None:
        missed = Counter(level for levels in self.rules.values() for level in levels)
        parts = []
        if missed:
            listed = "; ".join(f"{level} ({n} of {len(self.rules)})" for level, n in sorted(missed.items()))
            parts.append(
                f"EM saw no pairs at {len(missed)} comparison level(s) under some training rules, which leave "
                f"those levels' m as it was: {listed}"
            )
        if self.u_levels:
            parts.append(f"u sampling saw no pairs at: {'; '.join(sorted(self.u_levels))}")
        return "link: " + ". ".join(parts) if parts else None


@contextmanager
def splink_warnings_summarised() -> Iterator[TrainingWarnings]:
    """Within the block, Splink's unobserved-level warnings are collected (mark each EM rule with
    ``step``); at its end one line names them."""
    splink = logging.getLogger("splink")
    collector = TrainingWarnings()
    propagate = splink.propagate
    splink.addHandler(collector)
    splink.propagate = False
    try:
        yield collector
    finally:
        splink.removeHandler(collector)
        splink.propagate = propagate
        text = collector.summary()
        if text:
            log.warning("%s", text)
