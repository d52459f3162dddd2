"""Write :class:`~cdi_demo.tables.Table` objects to CSV, JSON lines or Parquet, inserting the
table's malformed rows at seeded positions and reporting their 1-based line numbers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from cdi_demo.malformed import json_line, make_malformed
from cdi_demo.tables import Table


def _good_lines(table: Table) -> list[str]:
    cols = [table.data[c] for c in table.columns]
    if table.fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=table.delimiter, lineterminator="\n")
        lists = [["" if v is None else v for v in c.tolist()] for c in cols]
        w.writerows(zip(*lists))
        text = buf.getvalue()
        return text.split("\n")[:-1]
    if table.extra.get("fast_json"):
        return _fast_json_lines(table)
    lists = [c.tolist() for c in cols]
    names = table.columns
    if table.to_json is not None:
        conv = table.to_json
        return [json_line(conv(dict(zip(names, vals)))) for vals in zip(*lists)]
    return [json_line(dict(zip(names, vals))) for vals in zip(*lists)]


def _fast_json_lines(table: Table) -> list[str]:
    """JSON lines for fact tables whose values are plain ASCII ids, timestamps and numbers."""
    parts = []
    for c in table.columns:
        v = table.data[c]
        if v.dtype.kind == "f":
            parts.append([repr(float(x)) for x in v.tolist()])
        else:
            parts.append([json.dumps(x) for x in v.tolist()])
    keys = [json.dumps(c) + ":" for c in table.columns]
    out = []
    for vals in zip(*parts):
        out.append("{" + ",".join(k + x for k, x in zip(keys, vals)) + "}")
    return out


def write_text(out: Path, table: Table, rng: np.random.Generator) -> tuple[dict, list[dict]]:
    path = out / table.path
    path.parent.mkdir(parents=True, exist_ok=True)
    good = _good_lines(table)
    n = len(good)
    bad_specs = [(kind, j) for kind, count in table.malformed for j in range(count)]
    nbad = len(bad_specs)
    positions = np.sort(rng.choice(n + nbad, size=nbad, replace=False)) if nbad else np.array([], int)
    order = rng.permutation(nbad)
    bad = []
    entries = []
    for serial, (pos, spec_i) in enumerate(zip(positions, order)):
        kind, _ = bad_specs[spec_i]
        j = int(rng.integers(0, n))
        row = {c: _py(table.data[c][j]) for c in table.columns}
        data, entry = make_malformed(table, kind, serial, row, rng)
        header = 1 if table.fmt == "csv" else 0
        entry = {"file": table.path, "line": int(pos) + 1 + header, **{k: v for k, v in entry.items() if k != "file"}}
        bad.append((int(pos), data))
        entries.append(entry)
    chunks: list[bytes] = []
    if table.fmt == "csv":
        chunks.append((table.delimiter.join(table.columns) + "\n").encode("utf-8"))
    gi = 0
    for k, (pos, data) in enumerate(bad):
        upto = pos - k
        if upto > gi:
            chunks.append(("\n".join(good[gi:upto]) + "\n").encode("utf-8"))
            gi = upto
        chunks.append(data + b"\n")
    if gi < n:
        chunks.append(("\n".join(good[gi:]) + "\n").encode("utf-8"))
    with open(path, "wb") as fh:
        for c in chunks:
            fh.write(c)
    info = {"format": table.fmt, "rows": n + nbad, "well_formed_rows": n, "malformed_rows": nbad}
    if table.fmt == "csv":
        info["delimiter"] = table.delimiter
    return info, entries


def _py(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_parquet(out: Path, table: Table) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = out / table.path
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = []
    for field in table.arrow_schema:
        v = table.data[field.name]
        if isinstance(v, pa.Array):
            arrays.append(v)
        elif pa.types.is_timestamp(field.type):
            arrays.append(pa.array(np.asarray(v, dtype=np.int64), pa.int64()).cast(field.type))
        elif pa.types.is_string(field.type):
            arrays.append(pa.array(v.tolist(), field.type))
        else:
            arrays.append(pa.array(v, field.type))
    t = pa.Table.from_arrays(arrays, schema=table.arrow_schema)
    pq.write_table(t, path, compression="snappy", row_group_size=500_000)
    return {"format": "parquet", "rows": t.num_rows, "well_formed_rows": t.num_rows, "malformed_rows": 0}
