"""Tables the lake writes are standard Delta: an independent reader sees the same rows.

The independent reader is ``polars.read_delta`` (delta-rs's own scan underneath), run in a
subprocess because that scan can abort the Python process at exit.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest
from pyspark.sql import types as T

from cdi.lake import Lake

_POLARS_READER = textwrap.dedent(
    """
    import datetime, decimal, json, sys
    import polars as pl

    def norm(value):
        if isinstance(value, datetime.datetime) and value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        if isinstance(value, (datetime.date, datetime.datetime, decimal.Decimal)):
            return str(value)
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [norm(v) for v in value]
        return value

    out = {}
    for key, path, version in json.loads(sys.argv[1]):
        df = pl.read_delta(path, version=version)
        out[key] = {"columns": df.columns, "rows": sorted(json.dumps(norm(list(r))) for r in df.rows())}
    print(json.dumps(out))
    """
)


def _norm(value):
    if isinstance(value, T.Row):
        return {k: _norm(v) for k, v in value.asDict().items()}
    if isinstance(value, (dt.date, dt.datetime, Decimal)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


def read_with_polars(requests: dict[str, tuple[str, int | None]]) -> dict[str, dict]:
    args = json.dumps([[key, path, version] for key, (path, version) in requests.items()])
    done = subprocess.run([sys.executable, "-c", _POLARS_READER, args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_with_lake(lake: Lake, table: str, version: int | None = None) -> dict:
    df = lake.read(table, version=version)
    return {"columns": df.columns, "rows": sorted(json.dumps(_norm(list(r))) for r in df.collect())}


@pytest.mark.parametrize("engine", ["delta-spark", "deltalake"])
def test_polars_reads_what_the_lake_wrote_after_appends_overwrites_and_deletes(spark, lake_root, engine):
    lake = Lake(spark, str(lake_root), job="reader-test", run_id="r1", engine=engine)
    mixed = T.StructType(
        [
            T.StructField("id", T.LongType()),
            T.StructField("name", T.StringType()),
            T.StructField("score", T.DoubleType()),
            T.StructField("amount", T.DecimalType(12, 2)),
            T.StructField("born", T.DateType()),
            T.StructField("seen_at", T.TimestampType()),
            T.StructField("active", T.BooleanType()),
            T.StructField("tags", T.ArrayType(T.StringType())),
            T.StructField("address", T.StructType([T.StructField("n", T.IntegerType()), T.StructField("city", T.StringType())])),
            T.StructField("grp", T.StringType()),
        ]
    )
    lake.write(
        "silver/mixed",
        spark.createDataFrame(
            [
                (1, "Ann", 1.5, Decimal("1234.50"), dt.date(1980, 2, 29), dt.datetime(2024, 5, 6, 7, 8, 9, 123456), True, ["a", "b"], (7, "Leeds"), "a"),
                (2, "Bo", -0.25, Decimal("-0.01"), dt.date(1900, 1, 1), dt.datetime(1999, 12, 31, 23, 59, 59), False, [], (None, None), "b"),
                (3, None, None, None, None, None, None, None, None, "a"),
                (4, "Cy", 3.0, Decimal("7.00"), dt.date(2001, 9, 9), dt.datetime(2020, 1, 1), True, ["c"], (1, "York"), "b"),
            ],
            mixed,
        ).coalesce(1),
    )
    lake.write(
        "silver/mixed",
        spark.createDataFrame(
            [(10, "New", 9.5, Decimal("1.10"), dt.date(2010, 10, 10), dt.datetime(2010, 10, 10, 10, 10, 10), False, ["n"], (2, "Hull"), "a")],
            mixed,
        ),
        mode="overwrite",
        replace_where="grp = 'a'",
    )
    lake.delete("silver/mixed", "id = 4")

    parts = "id long, country string, amount decimal(10,2)"
    lake.write(
        "extra/parts",
        spark.createDataFrame(
            [(1, "a b", Decimal("1.00")), (2, "x/y", None), (3, "p%q:r,s=t", Decimal("3.50")), (4, None, Decimal("4.00")), (5, "ü", None)],
            parts,
        ),
        partition_by=["country"],
    )
    lake.write("extra/parts", spark.createDataFrame([(20, "x/y", Decimal("2.00"))], parts), mode="overwrite", replace_partitions={"country": "x/y"})
    lake.delete("extra/parts", "country = 'a b' OR id = 4")
    lake.write("extra/parts", spark.createDataFrame([(6, "a b", None)], parts))

    polars = read_with_polars(
        {
            "mixed": (str(lake_root / "silver/mixed"), None),
            "mixed_v0": (str(lake_root / "silver/mixed"), 0),
            "parts": (str(lake_root / "extra/parts"), None),
        }
    )
    ours = {
        "mixed": read_with_lake(lake, "silver/mixed"),
        "mixed_v0": read_with_lake(lake, "silver/mixed", version=0),
        "parts": read_with_lake(lake, "extra/parts"),
    }
    assert len(ours["mixed"]["rows"]) == 2 and len(ours["mixed_v0"]["rows"]) == 4 and len(ours["parts"]["rows"]) == 4
    for key in ours:
        # polars puts partition columns where the Delta schema has them; compare as sets of columns
        assert sorted(polars[key]["columns"]) == sorted(ours[key]["columns"]), key
        order = [polars[key]["columns"].index(c) for c in ours[key]["columns"]]
        reordered = sorted(json.dumps([json.loads(r)[i] for i in order]) for r in polars[key]["rows"])
        assert reordered == ours[key]["rows"], key
