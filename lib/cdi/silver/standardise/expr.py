"""Column helpers the standardisers share: lookup tables as one plan node, values computed once."""

from __future__ import annotations

import json
from collections.abc import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F


def literal_map(mapping: dict[str, str]) -> Column:
    """A map<string,string> constant as ONE plan node (a JSON literal the optimizer folds), so a
    lookup table of hundreds of entries does not bloat every expression that uses it."""
    return F.from_json(F.lit(json.dumps(mapping, sort_keys=True, ensure_ascii=False)), "map<string,string>")


def let(value: Column, body: Callable[[Column], Column]) -> Column:
    """``body(value)`` with ``value`` computed once: a one-element transform binds it to a lambda
    variable. Without it every use of an intermediate copies its whole expression into the plan."""
    return F.element_at(F.transform(F.array(value), body), 1)
