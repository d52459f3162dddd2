"""A corpus of awkward but valid files is ingested with the right values; broken ones are
quarantined with a precise reason; a source that cannot be read or written fails alone."""

from __future__ import annotations

import json
import os

import pytest
from py4j.protocol import Py4JJavaError

from bronze_fixtures import bronze_config, bronze_rows, write_lines
from cdi.bronze import QUARANTINE_TABLE, IngestError, run_ingest
from cdi.lake import Lake


def csv_source(name, path, **extra) -> dict:
    return {"name": name, "kind": "customers", "format": "csv", "path": str(path), "id_columns": ["id"], **extra}


def json_source(name, path, **extra) -> dict:
    return {"name": name, "kind": "customers", "format": "json", "path": str(path), "id_columns": ["id"], **extra}


def quarantined(lake, source: str) -> list[tuple]:
    q = lake.read(QUARANTINE_TABLE).where(f"_source = '{source}'")
    return sorted(
        (r["_source_file"].rsplit("/", 1)[-1], r["_source_line"], r["_source_line_end"], r["_reason"], r["_raw"])
        for r in q.collect()
    )


@pytest.fixture(scope="module")
def corpus(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rfc = root / "rfc"
    rfc.mkdir()
    # BOM, CRLF line ends, a quoted delimiter, doubled quotes and a quoted CRLF line break
    (rfc / "quoted.csv").write_bytes(
        b"\xef\xbb\xbfid,name,address,note\r\n"
        + '1,"Kowalski, Jan","ul. Długa 5\r\nFlat 2",plain\r\n'.encode()
        + b'2,Ann,"x","She said ""hi"""\r\n'
        + b'3,"Bob ""The Builder""",,\r\n'
        + b"\r\n"
        + b'4,Cy,"two\r\n\r\nbreaks",last\r\n'
    )
    (rfc / "empty.csv").write_bytes(b"")
    (rfc / "header_only.csv").write_bytes(b"id,name,address,note\n")
    (root / "pl").mkdir()
    (root / "pl" / "pl.csv").write_bytes("id;name\n1;Łódź Świętokrzyska\n2;Zażółć Gęślą\n".encode("cp1250"))
    (root / "de").mkdir()
    (root / "de" / "de.csv").write_bytes("id,name,price\n1,Müller Œuvre,€5\n".encode("cp1252"))
    (root / "cz").mkdir()
    (root / "cz" / "cz.csv").write_bytes("id,name\n1,Dvořák Šťastný\n".encode("iso8859-2"))
    (root / "u16").mkdir()
    (root / "u16" / "u16.csv").write_bytes("id,name\r\n1,Zoë\r\n2,\"Ünal\r\nJr\"\r\n".encode("utf-16"))
    web = root / "web"
    web.mkdir()
    people = [{"id": "A1", "name": "Ann", "address": {"city": "Kraków"}}, {"id": "A2", "name": "Bob", "tags": ["x"]}]
    (web / "array.json").write_text(json.dumps(people, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (web / "lines.jsonl").write_text('{"id": "L1", "name": "Lia", "address": "no struct here"}\n', encoding="utf-8")
    (web / "empty.json").write_bytes(b"")
    (web / "empty_array.json").write_text("[\n]\n")
    cfg = bronze_config(
        root / "lake",
        [
            csv_source("rfc", rfc),
            csv_source("pl", root / "pl", options={"delimiter": ";", "encoding": "windows-1250"}),
            csv_source("de", root / "de", options={"encoding": "windows-1252"}),
            csv_source("cz", root / "cz", options={"encoding": "ISO-8859-2"}),
            csv_source("u16", root / "u16", options={"encoding": "UTF-16"}),
            json_source("web", web),
        ],
    )
    lake = Lake(spark, cfg.lake_root, job="ingest", run_id="r1")
    results = {r.source: r for r in run_ingest(spark, cfg, lake, "r1")}
    return lake, results


def test_rfc4180_csv_with_bom_crlf_quotes_and_quoted_line_breaks_is_read_as_written(corpus):
    lake, results = corpus
    assert (results["rfc"].rows_read, results["rfc"].rows_quarantined) == (4, 0)
    assert bronze_rows(lake, "rfc", "id", "_source_line", "name", "address", "note") == [
        ("1", 2, "Kowalski, Jan", "ul. Długa 5\nFlat 2", "plain"),
        ("2", 4, "Ann", "x", 'She said "hi"'),
        ("3", 5, 'Bob "The Builder"', None, None),
        ("4", 7, "Cy", "two\n\nbreaks", "last"),
    ]
    assert lake.read("bronze/rfc").columns[-4:] == ["id", "name", "address", "note"]  # no BOM in the header


def test_declared_single_byte_and_utf16_encodings_are_decoded(corpus):
    lake, results = corpus
    assert bronze_rows(lake, "pl", "id", "name") == [("1", "Łódź Świętokrzyska"), ("2", "Zażółć Gęślą")]
    assert bronze_rows(lake, "de", "name", "price") == [("Müller Œuvre", "€5")]
    assert bronze_rows(lake, "cz", "name") == [("Dvořák Šťastný",)]
    assert bronze_rows(lake, "u16", "id", "_source_line", "name") == [("1", 2, "Zoë"), ("2", 3, "Ünal\nJr")]
    assert all(results[s].rows_quarantined == 0 for s in ("pl", "de", "cz", "u16"))


def test_json_array_and_json_lines_files_are_read_together_and_empty_files_are_zero_rows(corpus):
    lake, results = corpus
    web = results["web"]
    assert (web.status, web.rows_read, web.rows_quarantined) == ("ingested", 3, 0)
    rows = bronze_rows(lake, "web", "id", "_source_line", "name", "address")
    # "address" is an object in one file and text in the other: kept as the object's JSON
    assert rows == [("A1", 1, "Ann", '{"city":"Kraków"}'), ("A2", 2, "Bob", None), ("L1", 1, "Lia", "no struct here")]
    assert lake.read("bronze/web").where("id = 'A2'").select("tags").first()[0] == ["x"]


def test_a_source_of_only_empty_and_header_only_files_is_zero_rows_not_an_error(spark, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.csv").write_bytes(b"")
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "empty.json").write_bytes(b"")
    write_lines(tmp_path / "h" / "header.csv", ["id,name"])
    cfg = bronze_config(
        tmp_path / "lake", [csv_source("e", tmp_path / "in"), json_source("j", tmp_path / "j"), csv_source("h", tmp_path / "h")]
    )
    lake = Lake(spark, cfg.lake_root, job="ingest")
    results = run_ingest(spark, cfg, lake, "r1")
    assert [(r.source, r.status, r.rows_read) for r in results] == [("e", "ingested", 0), ("j", "ingested", 0), ("h", "ingested", 0)]
    assert [r.status for r in run_ingest(spark, cfg, lake, "r2")] == ["up_to_date"] * 3


def test_broken_records_are_quarantined_each_with_its_reason(spark, tmp_path):
    write_lines(
        tmp_path / "crm" / "a.csv",
        [
            "id,name,city",
            "1,Ann,Oslo",
            '2,"Bob',  # a quoted line break ...
            'Smith",Rome,extra',  # ... in a record with one field too many (lines 3-4)
            "3,Cy",  # too few fields
            "7,Eve,Paris",  # the same id twice with different content
            "7,Eva,Paris",
            "8,Max,Bern",  # an identical repeat is not a conflict
            "8,Max,Bern",
            '9,"Zed,Lyon',  # a quote never closed before the end of the file
            "10,Kim,Oslo",
        ],
    )
    write_lines(tmp_path / "web" / "a.jsonl", ['{"id": "1", "name": "Ann"}', '{"id": "2", "name": '])
    cfg = bronze_config(
        tmp_path / "lake",
        [csv_source("crm", tmp_path / "crm"), json_source("web", tmp_path / "web")],
        max_quarantine_share=1.0,
    )
    lake = Lake(spark, cfg.lake_root, job="ingest")
    results = {r.source: r for r in run_ingest(spark, cfg, lake, "r1")}
    dup = "duplicate_id: id '7' appears in 2 rows of this batch with different content; fix the source, or set duplicate_ids: latest to keep the latest"
    assert quarantined(lake, "crm") == [
        # a joined record that does not parse is read line by line: only the lines with the stray quotes go
        ("a.csv", 3, 3, 'malformed_csv: unbalanced quotes (")', '2,"Bob'),
        ("a.csv", 4, 4, 'malformed_csv: unbalanced quotes (")', 'Smith",Rome,extra'),
        ("a.csv", 5, 5, "malformed_csv: the line does not split into the header's 3 fields", "3,Cy"),
        ("a.csv", 6, 6, dup, "7,Eve,Paris"),
        ("a.csv", 7, 7, dup, "7,Eva,Paris"),
        ("a.csv", 10, 10, 'malformed_csv: unbalanced quotes (")', '9,"Zed,Lyon'),
    ]
    assert bronze_rows(lake, "crm", "id", "_source_line") == [("1", 2), ("10", 11), ("8", 8), ("8", 9)]
    assert results["crm"].identity_holds and results["crm"].rows_read == 10  # lines 3 and 4 read one by one
    assert [r[3].split(":")[0] for r in quarantined(lake, "web")] == ["invalid_json"]


def test_duplicate_ids_can_be_resolved_to_the_latest_row(spark, tmp_path):
    write_lines(tmp_path / "crm" / "a.csv", ["id,name,modified", "7,Eve,2024-02-01", "7,Eva,2024-01-01", "8,Max,2024-01-01"])
    source = csv_source("crm", tmp_path / "crm", duplicate_ids="latest", updated_at={"column": "modified", "formats": ["yyyy-MM-dd"]})
    cfg = bronze_config(tmp_path / "lake", [source], max_quarantine_share=1.0)
    lake = Lake(spark, cfg.lake_root, job="ingest")
    run_ingest(spark, cfg, lake, "r1")
    assert bronze_rows(lake, "crm", "id", "name") == [("7", "Eve"), ("8", "Max")]
    reasons = [r[3] for r in quarantined(lake, "crm")]
    assert reasons == ["duplicate_id: id '7' appears in 2 rows of this batch with different content; the latest (line 2) was kept"]


def test_an_unsupported_encoding_fails_its_source_saying_what_to_do(spark, tmp_path):
    write_lines(tmp_path / "a" / "a.csv", ["id,name", "1,Ann"])
    write_lines(tmp_path / "b" / "b.csv", ["id,name", "2,Bob"])
    cfg = bronze_config(
        tmp_path / "lake", [csv_source("a", tmp_path / "a", options={"encoding": "Shift_JIS"}), csv_source("b", tmp_path / "b")]
    )
    lake = Lake(spark, cfg.lake_root, job="ingest")
    with pytest.raises(IngestError) as err:
        run_ingest(spark, cfg, lake, "r1")
    assert "encoding 'Shift_JIS' is not supported" in str(err.value) and "iconv" in str(err.value)
    assert {r.source: r.status for r in err.value.results} == {"a": "failed", "b": "ingested"}


def two_sources(spark, tmp_path, a_file: str = "a.csv"):
    """Sources a (one file named ``a_file``) and b; a is made to fail, b must still be ingested."""
    path = write_lines(tmp_path / "a" / a_file, ["id,name", "1,Ann"])
    write_lines(tmp_path / "b" / "b.csv", ["id,name", "2,Bob"])
    cfg = bronze_config(tmp_path / "lake", [csv_source("a", tmp_path / "a"), csv_source("b", tmp_path / "b")])
    return path, cfg, Lake(spark, cfg.lake_root, job="ingest")


def fails_alone(spark, cfg, lake) -> IngestError:
    with pytest.raises(IngestError) as err:
        run_ingest(spark, cfg, lake, "r1")
    assert {r.source: r.status for r in err.value.results} == {"a": "failed", "b": "ingested"}
    assert bronze_rows(lake, "b", "id") == [("2",)]
    return err.value


def test_a_file_that_vanishes_before_it_is_read_fails_its_source_alone_naming_source_file_and_cause(spark, tmp_path, monkeypatch):
    from cdi.bronze import readers

    gone, cfg, lake = two_sources(spark, tmp_path, "gone.csv")
    listed = readers.list_files

    def list_then_delete(spark, source):
        files = listed(spark, source)
        if source.name == "a":
            gone.unlink()
        return files

    monkeypatch.setattr(readers, "list_files", list_then_delete)
    message = str(fails_alone(spark, cfg, lake))
    first, last = message.splitlines()[0], message.splitlines()[-1]
    assert first.startswith("ingest failed for 1 source(s) (a); the other 1 source(s) were ingested: source 'a': ")
    assert "ingest stage, reading" in last and "gone.csv" in last and "moved or deleted" in last


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_file_fails_its_source_alone(spark, tmp_path):
    path, cfg, lake = two_sources(spark, tmp_path, "secret.csv")
    path.chmod(0)
    last = str(fails_alone(spark, cfg, lake)).splitlines()[-1]
    assert "source 'a'" in last and "secret.csv" in last and "permission denied" in last


def test_a_full_disk_while_writing_one_source_fails_it_alone_naming_the_table_path(spark, tmp_path, monkeypatch):
    _, cfg, lake = two_sources(spark, tmp_path)
    write = Lake.write
    jvm = spark.sparkContext._jvm

    def full_disk(self, table, df, *args, **kwargs):
        if table == "bronze/a":
            cause = jvm.java.io.IOException("No space left on device")
            raise Py4JJavaError("An error occurred while calling o5330.parquet", jvm.org.apache.spark.SparkException("Job aborted", cause))
        return write(self, table, df, *args, **kwargs)

    monkeypatch.setattr(Lake, "write", full_disk)
    err = fails_alone(spark, cfg, lake)
    error = err.results[0].error
    assert error.startswith("source 'a': ingest stage, writing ") and lake.path("bronze/a") in error
    assert "java.io.IOException: No space left on device" in error and "the disk is full" in error
    assert "\n" not in error and "Py4JJavaError" not in str(err)
