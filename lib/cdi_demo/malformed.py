"""Deliberately broken rows for the text files (CSV / JSON lines).

Each malformed row is a copy of a real row with fresh ids (so it never matches truth.csv) and
one defect:

* ``broken_quoting`` (CSV): a field opens a quote that never closes, before at least one more
  delimiter, so the line parses to fewer fields than the header. Spark's CSV reader with
  ``multiLine=false`` reads line by line, so the open quote cannot swallow the next lines, and
  PERMISSIVE mode puts the line in the corrupt-record column.
* ``invalid_json`` (JSONL): the line is cut short, or written with single quotes.
* ``impossible_date``: the last-updated column holds 30 February / month 13 / 31 April.
* ``invalid_utf8``: a name written in a legacy 8-bit code page (Latin-1 / Windows-1250).
* ``overlong_field``: a text field longer than 2,000 characters.
* ``missing_id``: the id column is empty (CSV) or null (JSON).
"""

from __future__ import annotations

import csv
import io
import json

IMPOSSIBLE = {
    "space": ("2023-02-30 10:00:00", "2022-13-05 08:15:00", "2024-04-31 23:10:00"),
    "isoz": ("2023-02-30T10:00:00Z", "2022-13-05T08:15:00Z", "2024-04-31T23:10:00Z"),
    "dotted": ("30.02.2023 10:00", "05.13.2022 08:15", "31.04.2024 23:10"),
    "dotted_s": ("30.02.2023 10:00:00", "05.13.2022 08:15:00", "31.04.2024 23:10:00"),
}
LEGACY_NAMES = {  # name -> legacy encoding that is not valid UTF-8 for it
    "last": (("Wójcik", "cp1250"), ("Müller", "latin-1"), ("Núñez", "latin-1"), ("Łęcka", "cp1250")),
    "full": (("Łukasz Wójcik", "cp1250"), ("Jürgen Müller", "latin-1"), ("Begoña Núñez", "latin-1")),
}
FILLER = ("Please deliver to the back door and ring twice - the bell is broken - "
          "leave with neighbour at number 12 if nobody is home ")


def csv_line(values: list, delimiter: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerow(
        ["" if v is None else v for v in values])
    return buf.getvalue()[:-1]


def json_line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def make_malformed(table, kind: str, serial: int, row: dict, rng) -> tuple[bytes, dict]:
    """One malformed line (without newline) and its manifest entry (without line number)."""
    row = dict(row)
    ids = table.fresh_ids(serial)
    row.update(ids)
    key = table.customer_key or table.id_column
    entry = {"file": table.path, "kind": kind, "id_column": key}
    if kind == "missing_id":
        row[key] = None
    if kind == "impossible_date":
        row[table.last_updated] = IMPOSSIBLE[table.last_updated_format][serial % 3]
    if kind == "overlong_field":
        length = 2100 + int(rng.integers(0, 900))
        row[table.text_column] = (FILLER * (length // len(FILLER) + 1))[:length]
    legacy = None
    if kind == "invalid_utf8":
        group = "last" if table.name_column in ("last_name",) else "full"
        options = LEGACY_NAMES[group]
        name, enc = options[serial % len(options)]
        row[table.name_column] = name
        legacy = (name.encode("utf-8"), name.encode(enc))
    entry["id"] = row.get(key)
    if table.id_column and table.id_column != key:
        entry["row_id"] = row.get(table.id_column)
    values = [row[c] for c in table.columns]
    if table.fmt == "csv":
        if kind == "broken_quoting":
            clean = ["" if v is None else str(v).replace(table.delimiter, " ").replace('"', "")
                     for v in values]
            # open a quote in a field that still has at least two delimiters after it
            k = 1 + int(rng.integers(0, max(1, len(clean) - 3)))
            clean[k] = '"' + clean[k]
            text = table.delimiter.join(clean)
        else:
            text = csv_line(values, table.delimiter)
    else:
        obj = table.to_json(row) if table.to_json else {c: row[c] for c in table.columns}
        text = json_line(obj)
        if kind == "invalid_json":
            if serial % 2 == 0:
                text = text[: max(10, int(len(text) * 0.6))]
            else:
                text = text.replace('"', "'")
    data = text.encode("utf-8")
    if legacy is not None:
        data = data.replace(legacy[0], legacy[1], 1)
    return data, entry
