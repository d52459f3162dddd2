"""Splink's per-level training warnings, summarised once.

EM warns for every level it never sees in a rule's pairs ("Level X on comparison Y not observed
in dataset, unable to train m value"), one multi-line warning each, per training rule: dozens of
lines on small or narrow data, all saying the same thing. During training they are collected and
logged as one line naming every level; Splink's other records pass through unchanged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

_UNOBSERVED = re.compile(r"Level (?P<level>.+?) on comparison (?P<comparison>.+?) not observed in dataset, unable to train (?P<param>[mu]) value")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.unobserved: dict[str, list[str]] = {"m": [], "u": []}

    def emit(self, record: logging.LogRecord) -> None:
        match = _UNOBSERVED.search(record.getMessage())
        if match:
            entry = f"{match['comparison']}: {match['level']}"
            if entry not in self.unobserved[match["param"]]:
                self.unobserved[match["param"]].append(entry)
            return
        logging.getLogger().handle(record)  # everything else goes on as Splink logged it


@contextmanager
def splink_warnings_summarised() -> Iterator[None]:
    """Within the block, Splink's unobserved-level warnings are collected; at its end one line
    names them (the levels keep their starting values, which is expected for rare levels)."""
    splink = logging.getLogger("splink")
    collector = _Collector()
    propagate = splink.propagate
    splink.addHandler(collector)
    splink.propagate = False
    try:
        yield
    finally:
        splink.removeHandler(collector)
        splink.propagate = propagate
        for param, levels in collector.unobserved.items():
            if levels:
                log.warning(
                    "link: %d comparison level(s) never occurred in the pairs that train %s, so their %s "
                    "probabilities keep their starting values: %s",
                    len(levels), "m (EM)" if param == "m" else "u (sampling)", param, "; ".join(levels),
                )  # fmt: skip
