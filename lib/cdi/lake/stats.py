"""Delta file statistics from Parquet footers, so the ``deltalake`` engine commits files with
the same ``numRecords``/``minValues``/``maxValues``/``nullCount`` a Delta writer would record.

Only the footer is read (a few KB per file), never the data. Readers skip files by these bounds,
so a bound that cannot be written exactly is widened (timestamps to whole milliseconds outwards)
or left out (long strings, imprecise decimals, floating point, timestamps without time zone); a
missing bound only costs skipping, a wrong one loses rows. Floating point columns get no bounds
because Parquet writers disagree on NaN (Spark orders it above every number; some writers leave
it out of the footer's min/max, which would let a reader skip a file holding NaN rows).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import pyarrow.parquet as pq

_MAX_STRING_STAT = 32


def _stat_value(value: Any, upper: bool = False) -> Any:
    """``value`` as Delta stats JSON holds it; ``upper`` rounds a timestamp up, not down."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return None  # timestamp_ntz: Delta spells these differently; leave the bound out
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
        if upper and value.microsecond % 1000:
            # Delta stats keep milliseconds: a truncated maximum would be below the real one
            value += dt.timedelta(microseconds=1000 - value.microsecond % 1000)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        as_float = float(value)
        # JSON numbers go through a float here; keep the bound only if it reads back exactly
        return as_float if decimal.Decimal(repr(as_float)) == value else None
    if isinstance(value, bytes):
        return None
    if isinstance(value, float):
        return None
    return value


def file_stats(metadata: pq.FileMetaData, bounded: frozenset[str] | None = None) -> str:
    """Delta ``stats`` JSON for one Parquet file, aggregated over its row groups; min/max only
    for the ``bounded`` columns when given (the table's ``delta.dataSkippingStatsColumns``)."""
    num_rows = metadata.num_rows
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    schema = metadata.schema.to_arrow_schema()
    top_level = {f.name for f in schema if not (hasattr(f.type, "num_fields") and f.type.num_fields)}
    invalid: set[str] = set()
    for rg_index in range(metadata.num_row_groups):
        rg = metadata.row_group(rg_index)
        for ci in range(rg.num_columns):
            col = rg.column(ci)
            name = col.path_in_schema
            if name not in top_level:
                continue
            if bounded is not None and name not in bounded:
                if col.statistics is not None and col.statistics.null_count is not None:
                    nulls[name] = nulls.get(name, 0) + col.statistics.null_count
                continue
            st = col.statistics
            if st is None:
                invalid.add(name)
                continue
            if st.null_count is not None:
                nulls[name] = nulls.get(name, 0) + st.null_count
            if not st.has_min_max:
                if st.null_count != rg.num_rows:
                    invalid.add(name)
                continue
            lo, hi = _stat_value(st.min), _stat_value(st.max, upper=True)
            if lo is None or hi is None:
                invalid.add(name)
                continue
            if isinstance(lo, str) and (len(lo) > _MAX_STRING_STAT or len(hi) > _MAX_STRING_STAT):
                invalid.add(name)
                continue
            mins[name] = lo if name not in mins else min(mins[name], lo)
            maxs[name] = hi if name not in maxs else max(maxs[name], hi)
    for name in invalid:
        mins.pop(name, None)
        maxs.pop(name, None)
    return json.dumps(
        {"numRecords": num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls},
        separators=(",", ":"),
    )
