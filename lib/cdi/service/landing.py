"""``POST /api/records``: a record typed at a desk lands as a file of a configured source, so the
next run consolidates it like any other source row (bronze with lineage, quarantine when it is
malformed, linkage, survivorship, the change feed).

``service.landing_source`` names a customer source of format ``json`` whose ``path`` is a local
folder or a glob in one (``landing/*.jsonl``). Each accepted record is one JSON-lines file,
written under a hidden temporary name and renamed into place, so ingest never sees half a file
and its ledger takes each file exactly once.
"""

from __future__ import annotations

import glob
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdi import schema
from cdi.config import SourceConfig
from cdi.errors import ConfigError

_MAX_FIELDS = 200
_MAX_VALUE = 10_000


class LandingError(ConfigError):
    """A submitted record that cannot be landed as sent (the message names the field)."""


_COMPRESSED = (".gz", ".bz2", ".zst", ".xz", ".lz4", ".snappy", ".zip")


def landing_folder(source: SourceConfig) -> tuple[Path, str]:
    """The folder a source's files land in, and the file-name pattern its glob reads, with one
    ``*`` for the generated name (``*.jsonl`` when the path is a folder). A pattern this cannot
    fill (other wildcards, several ``*``, a compressed suffix) is a configuration error."""
    path = source.path or ""
    if not glob.has_magic(path):
        return Path(path), "*.jsonl"
    folder, pattern = os.path.split(path)
    if glob.has_magic(folder) or pattern.count("*") != 1 or glob.has_magic(pattern.replace("*", "")):
        raise ConfigError(
            f"service.landing_source '{source.name}': path {path!r} must be a folder, or a folder and a file pattern "
            "with one '*' (landing/*.jsonl), for the service to name the files it writes"
        )
    if pattern.lower().endswith(_COMPRESSED):
        raise ConfigError(f"service.landing_source '{source.name}': the service writes plain JSON lines, not {pattern!r}")
    return Path(folder), pattern


def land_record(source: SourceConfig, record: dict[str, Any], submitted_by: str) -> dict[str, Any]:
    """Write one record as a file of ``source``; where it went and the record key it will have."""
    if not isinstance(record, dict) or not record:
        raise LandingError("the record must be a JSON object of the source's columns")
    if len(record) > _MAX_FIELDS:
        raise LandingError(f"the record has {len(record)} fields; at most {_MAX_FIELDS} are accepted")
    seen: dict[str, str] = {}
    for key, value in record.items():
        if not isinstance(key, str) or not key.strip():
            raise LandingError("every field needs a name")
        if key.startswith("_"):
            raise LandingError(f"field {key!r}: names starting with '_' are the lake's own lineage columns")
        if key.lower() in seen:
            raise LandingError(f"fields {seen[key.lower()]!r} and {key!r} differ only in case")
        seen[key.lower()] = key
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise LandingError(f"field {key!r}: only text, numbers, true/false or null are accepted, got {type(value).__name__}")
        if isinstance(value, str) and len(value) > _MAX_VALUE:
            raise LandingError(f"field {key!r}: longer than {_MAX_VALUE} characters")
    missing = [c for c in source.id_columns if record.get(c) in (None, "")]
    if missing:
        raise LandingError(f"source '{source.name}' identifies records by {source.id_columns}: field(s) {missing} are missing")
    # every column the source's mapping reads is in the file (null when not given): ingest
    # checks each file for them, and a record without a phone is still a record
    expected = list(source.id_columns)
    for target in source.mapping:
        spec = source.column_spec(target)
        expected += spec.source_columns() if spec else []
    record = {**dict.fromkeys(expected), **record}
    folder, pattern = landing_folder(source)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    name = pattern.replace("*", f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}")
    temp = folder / f".{name}.tmp"
    temp.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temp, folder / name)
    # as ingest reads the JSON: true/false in lower case, numbers as written
    record_id = "|".join(json.dumps(v) if isinstance(v, bool) else str(v) for v in (record[c] for c in source.id_columns))
    return {
        "source": source.name,
        "file": str(folder / name),
        "record_key": schema.record_key(source.name, record_id),
        "submitted_by": submitted_by,
        "submitted_at": now,
        "applies": "at the next ingest (cdi run)",
    }
