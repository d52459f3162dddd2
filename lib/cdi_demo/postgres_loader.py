"""Load the demo CRM contacts CSV into PostgreSQL, so the CRM can be ingested over JDBC like a
real operational database.

The table has one ``text`` column per CSV column (``last_modified`` included): values are kept
as the CSV has them (no date or number parsing); an empty field becomes NULL. Lines that are
broken *as CSV* are skipped and reported: bytes that are not UTF-8, unbalanced quoting, or a
field count different from the header's. Lines that are well-formed CSV but carry bad data
(impossible dates, over-long fields, an empty id) are loaded as they are: catching those is the
ingestion's job.
"""

from __future__ import annotations

import csv
from pathlib import Path


def _parse_lines(csv_path) -> tuple[list[str], list[list[str]], list[dict]]:
    raw = Path(csv_path).read_bytes().split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    if not raw:
        raise ValueError(f"{csv_path} is empty")
    header = next(csv.reader([raw[0].decode("utf-8-sig").rstrip("\r")]))
    rows, skipped = [], []
    for lineno, b in enumerate(raw[1:], start=2):
        try:
            text = b.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            skipped.append({"line": lineno, "reason": "invalid UTF-8"})
            continue
        try:
            fields = next(csv.reader([text], strict=True))
        except (csv.Error, StopIteration) as exc:
            skipped.append({"line": lineno, "reason": f"CSV parse error: {exc}"})
            continue
        if len(fields) != len(header):
            skipped.append({"line": lineno, "reason": f"{len(fields)} fields, header has {len(header)}"})
            continue
        rows.append([f if f != "" else None for f in fields])
    return header, rows, skipped


def load_crm_into_postgres(dsn: str, csv_path, table: str = "crm_contacts", replace: bool = True) -> dict:
    """Create ``table`` (all text columns) and COPY the well-formed rows of ``csv_path`` into it.

    ``table`` may be schema-qualified (``crm.contacts``). With ``replace`` (default) an existing
    table is dropped first. Returns ``{"table", "rows_loaded", "lines_skipped": [{"line",
    "reason"}]}`` (line numbers are 1-based file lines, the header being line 1).
    """
    import psycopg
    from psycopg import sql

    header, rows, skipped = _parse_lines(csv_path)
    ident = sql.Identifier(*table.split("."))
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in header)
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            if replace:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
            cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                ident, sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in header)))
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(ident, cols)) as copy:
                for r in rows:
                    copy.write_row(r)
        conn.commit()
    return {"table": table, "rows_loaded": len(rows), "lines_skipped": skipped}
