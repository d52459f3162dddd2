"""Readers keep every value as the source wrote it, with the right file and line for each row."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
from bronze_fixtures import write_jsonl, write_lines
from cdi.bronze.files import list_files
from cdi.bronze.readers.csv import read_csv
from cdi.bronze.readers.json_lines import read_json_lines
from cdi.bronze.readers.parquet import read_parquet
from cdi.config import SourceConfig
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructType


def source(path, fmt="csv", **extra) -> SourceConfig:
    return SourceConfig(name="src", kind="customers", format=fmt, path=str(path), id_columns=["id"], **extra)


def data_rows(batch, *columns):
    return sorted(tuple(r) for r in batch.df.select(*columns).collect())


def test_semicolon_csv_keeps_day_first_dates_as_text_with_file_and_line(spark, tmp_path):
    path = write_lines(
        tmp_path / "pos" / "loyalty cards.csv",
        ["id;name;birth_date;modified", '1;"Kowalski; Jan";05.01.1980;30.01.2023 10:00', "", "2; Nowak ;;01.02.2023 09:30"],
        newline=b"\r\n",
    )
    src = source(tmp_path / "pos", options={"delimiter": ";"})
    files = list_files(spark, src)
    assert [f.name for f in files] == ["loyalty%20cards.csv"] and files[0].size == path.stat().st_size
    batch = read_csv(spark, src, files)

    assert batch.columns == ["id", "name", "birth_date", "modified"]
    assert all(isinstance(f.dataType, StringType) for f in batch.df.select(*batch.columns).schema.fields)
    assert data_rows(batch, "_source_file", "_source_line", "id", "name", "birth_date", "modified", "_parse_error") == [
        (files[0].uri, 2, "1", "Kowalski; Jan", "05.01.1980", "30.01.2023 10:00", None),
        (files[0].uri, 4, "2", " Nowak ", None, "01.02.2023 09:30", None),
    ]
    assert batch.columns_per_unit == {files[0].uri: ["id", "name", "birth_date", "modified"]}


def test_line_numbers_stay_exact_when_a_file_is_split_across_tasks(spark, tmp_path):
    n = 30_000
    write_lines(tmp_path / "big.csv", ["id,payload"] + [f"{i},{'x' * 20}" for i in range(2, n + 2)])
    src = source(tmp_path / "big.csv")
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(128 * 1024))
    try:
        batch = read_csv(spark, src, list_files(spark, src))
        assert batch.df.rdd.getNumPartitions() > 3
        stats = batch.df.agg(
            F.count("*").alias("rows"),
            F.sum((F.col("id").cast("long") != F.col("_source_line")).cast("int")).alias("wrong"),
            F.max("_source_line").alias("last"),
        ).first()
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)
    assert (stats["rows"], stats["wrong"], stats["last"]) == (n, 0, n + 1)


def test_csv_files_with_different_headers_are_each_parsed_by_their_own(spark, tmp_path):
    write_lines(tmp_path / "in" / "a.csv", ["id,name", "1,Ann"])
    write_lines(tmp_path / "in" / "b.csv", ["name,id,email", 'Bob,2,"b@x.org"'])
    src = source(tmp_path / "in")
    batch = read_csv(spark, src, list_files(spark, src))
    assert batch.columns == ["id", "name", "email"]
    assert data_rows(batch, "id", "name", "email") == [("1", "Ann", None), ("2", "Bob", "b@x.org")]


def test_latin1_file_is_decoded_with_the_encoding_option(spark, tmp_path):
    write_lines(tmp_path / "l.csv", ["id,name", "1,M\xfcller".encode("latin-1")])
    src = source(tmp_path / "l.csv", options={"encoding": "ISO-8859-1"})
    batch = read_csv(spark, src, list_files(spark, src))
    assert data_rows(batch, "id", "name", "_raw_bytes") == [("1", "Müller", None)]


def test_json_lines_keep_scalars_as_text_and_nested_objects_as_structs(spark, tmp_path):
    write_jsonl(
        tmp_path / "accounts.jsonl",
        [
            '{"id": "A1", "amount": 12.5, "price": "12.50", "vip": true, "big": 12345678901234567890, "address": {"city": "Kraków", "zip": "30-001"}}',
            {"id": "A2", "amount": 3, "vip": False, "address": None, "tags": ["x", "y"]},
        ],
    )
    src = source(tmp_path / "accounts.jsonl", fmt="json")
    batch = read_json_lines(spark, src, list_files(spark, src))
    schema = batch.df.schema
    assert isinstance(schema["address"].dataType, StructType)
    assert schema["address"].dataType.simpleString() == "struct<city:string,zip:string>"
    assert schema["tags"].dataType.simpleString() == "array<string>"
    rows = data_rows(batch, "_source_line", "id", "amount", "price", "vip", "big", "address.city", "address.zip", "tags")
    assert rows == [
        (1, "A1", "12.5", "12.50", "true", "12345678901234567890", "Kraków", "30-001", None),
        (2, "A2", "3", None, "false", None, None, None, ["x", "y"]),
    ]
    keys = batch.unit_columns(batch.df)
    assert sorted(next(iter(keys.values()))) == ["address", "amount", "big", "id", "price", "tags", "vip"]


def test_parquet_keeps_its_types_and_numbers_rows_per_file(spark, tmp_path):
    folder = tmp_path / "billing"
    folder.mkdir()
    table = pa.table(
        {
            "id": pa.array([7, 8], pa.int64()),
            "amount": pa.array([Decimal("1.50"), Decimal("20.00")], pa.decimal128(12, 2)),
            "name": ["Ann", "Bob"],
        }
    )
    pq.write_table(table, folder / "part-1.parquet")
    pq.write_table(table.slice(1), folder / "part-2.parquet")
    (folder / "_SUCCESS").write_text("")
    src = source(folder, fmt="parquet")
    files = list_files(spark, src)
    assert [f.name for f in files] == ["part-1.parquet", "part-2.parquet"]
    batch = read_parquet(spark, src, files)
    assert batch.df.schema["amount"].dataType.simpleString() == "decimal(12,2)"
    rows = data_rows(batch, "_source_file", "_source_line", "id", "amount")
    assert rows == [
        (files[0].uri, 1, 7, Decimal("1.50")),
        (files[0].uri, 2, 8, Decimal("20.00")),
        (files[1].uri, 1, 8, Decimal("20.00")),
    ]
    raw = batch.df.where("_source_line = 1 AND id = 7").select(batch.raw).first()[0]
    assert raw == '{"id":7,"amount":1.50,"name":"Ann"}'
