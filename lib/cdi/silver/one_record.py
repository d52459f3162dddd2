"""One record at a time through the batch's own standardisation, for real-time matching.

Building the standardisation plan costs seconds (thousands of column expressions, analysed by
Spark), far more than running it on one row. :class:`RecordStandardiser` builds it once, over a
small Python data source that reads the record of the moment from a file, and runs the same
DataFrame again for each record: Spark keeps the DataFrame's physical plan (and its broadcast
lookups), and the source is read afresh by every execution. The result is exactly what
:func:`~cdi.silver.standardise.standardise_records` writes to ``silver/records``.

The record is given in canonical attribute names (``first_name``, ``email``, ``date_of_birth``
as ``yyyy-MM-dd`` or another ISO form, ...); one record is standardised at a time.

    >>> standardise = RecordStandardiser(spark)  # doctest: +SKIP
    >>> standardise({"first_name": "BILL", "last_name": "o'brien", "email": "Bill@Example.COM"})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from datetime import date
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.datasource import DataSource, DataSourceReader

from cdi.config import DATE_ATTRIBUTES
from cdi.errors import ConfigError
from cdi.silver.standardise import DEFAULT_DATE_FORMATS, STAGED_ATTRIBUTES, STAGED_COLUMNS, parse_date, standardise_records

SOURCE_NAME = "cdi_one_record"
ATTRIBUTES = (*STAGED_ATTRIBUTES, *DATE_ATTRIBUTES)
"""What a record may hold: the canonical attributes a source maps (text each)."""
_MAX_VALUE = 1_000
_FILE = "record.json"
_TEXT_COLUMNS = [name for name, _ in STAGED_COLUMNS if name not in (*DATE_ATTRIBUTES, "reference_keys")]
_SCHEMA = ", ".join(
    [f"{name} string" for name in [*_TEXT_COLUMNS, *DATE_ATTRIBUTES]] + ["reference_keys array<string>"]
)


class RecordError(ConfigError):
    """A record that cannot be standardised as sent (the message names the field)."""


class _RecordReader(DataSourceReader):
    def __init__(self, folder: str):
        self.folder = folder

    def read(self, partition):
        with open(os.path.join(self.folder, _FILE), encoding="utf-8") as fh:
            row = json.load(fh)
        names = [*_TEXT_COLUMNS, *DATE_ATTRIBUTES, "reference_keys"]
        yield tuple(row.get(n) for n in names)


class _OneRecordSource(DataSource):
    """The record of the moment, from ``<path>/record.json`` (written before each execution)."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return _SCHEMA

    def reader(self, schema) -> DataSourceReader:
        return _RecordReader(self.options["path"])


def checked_record(record: Any) -> dict[str, str | None]:
    """``record`` as text per canonical attribute; a RecordError names what is wrong."""
    if not isinstance(record, dict) or not record:
        raise RecordError("the record must be a JSON object of canonical attributes, e.g. {\"first_name\": \"Ann\"}")
    unknown = sorted(k for k in record if k not in ATTRIBUTES)
    if unknown:
        raise RecordError(f"unknown attribute(s) {unknown}; a record may hold: {', '.join(ATTRIBUTES)}")
    out: dict[str, str | None] = {}
    for key, value in record.items():
        if (value is not None and not isinstance(value, (str, int, float))) or isinstance(value, bool):
            raise RecordError(f"{key}: give text (or a number), not {type(value).__name__}")
        text = None if value is None else str(value)
        if text is not None and len(text) > _MAX_VALUE:
            raise RecordError(f"{key}: {len(text)} characters; at most {_MAX_VALUE} are accepted")
        out[key] = text
    if not any(out.values()):
        raise RecordError("the record has no values")
    return out


class RecordStandardiser:
    """Standardise one record at a time with the batch's plan, planned once (see the module)."""

    def __init__(self, spark: SparkSession):
        self.folder = tempfile.mkdtemp(prefix="cdi-one-record-")
        self.planned_on = date.today()  # Spark folds current_date() into the plan: plan again the next day
        self._lock = threading.Lock()
        spark.dataSource.register(_OneRecordSource)
        raw = spark.read.format(SOURCE_NAME).option("path", self.folder).load()
        staged = raw.withColumns({f"_raw_{name}": F.col(name) for name in DATE_ATTRIBUTES}).withColumns(
            {name: parse_date(F.col(name), DEFAULT_DATE_FORMATS) for name in DATE_ATTRIBUTES}
        )
        self._plan = standardise_records(staged)

    def __call__(self, record: dict[str, Any], record_key: str = "desk:match") -> dict[str, Any]:
        """The ``silver/records`` row of ``record`` (keyed ``record_key``)."""
        values = checked_record(record)
        source = record_key.split(":", 1)[0]
        row = {**values, "record_key": record_key, "source": source, "source_record_id": record_key.split(":", 1)[-1]}
        with self._lock:
            path = os.path.join(self.folder, _FILE)
            with open(path + ".tmp", "w", encoding="utf-8") as fh:
                json.dump(row, fh)
            os.replace(path + ".tmp", path)
            rows = self._plan.collect()  # one row
        return rows[0].asDict(recursive=True)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
