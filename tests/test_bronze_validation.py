"""Every quarantine reason is found, on the right line, with a detail naming the field."""

from __future__ import annotations

from bronze_fixtures import write_jsonl, write_lines
from cdi.bronze.files import list_files
from cdi.bronze.readers.csv import read_csv
from cdi.bronze.readers.json_lines import read_json_lines
from cdi.bronze.validation import REASON, classify
from cdi.config import SourceConfig
from pyspark.sql import functions as F


def reasons_by_line(batch, src: SourceConfig, max_len: int = 20) -> dict[int, str | None]:
    checked = classify(batch.df, src, batch.columns, max_len)
    return {r[0]: r[1] for r in checked.select("_source_line", REASON).collect()}


def test_csv_lines_get_the_first_failing_check_as_reason(spark, tmp_path):
    write_lines(
        tmp_path / "c.csv",
        [
            "id,name,email,visits,amount,dob,modified",
            "1,Ann,a@x.org,3,12.50,05.01.1980,2023-01-05 10:00:00",  # 2 good
            '2,"Bob,b@x.org,3,1.00,05.01.1980,2023-01-05 10:00:00',  # 3 unbalanced quote
            "3,Cy,c@x.org,3,1.00,05.01.1980,2023-01-05 10:00:00,extra",  # 4 too many fields
            "4,Jos\xe9,d@x.org,3,1.00,05.01.1980,2023-01-05 10:00:00".encode("latin-1"),  # 5 not UTF-8
            "  ,Dee,e@x.org,3,1.00,05.01.1980,2023-01-05 10:00:00",  # 6 blank id
            "6,Eve,,3,1.00,05.01.1980,2023-01-05 10:00:00",  # 7 required email empty
            "7,Fay,f@x.org,many,1.00,05.01.1980,2023-01-05 10:00:00",  # 8 not an int
            "8,Gus,g@x.org,3,1.0.0,05.01.1980,2023-01-05 10:00:00",  # 9 not a decimal
            "9,Hal,h@x.org,3,1.00,1980-01-05,2023-01-05 10:00:00",  # 10 date in the wrong format
            "10,Ida,i@x.org,3,1.00,05.01.1980,2023-02-30 10:00:00",  # 11 impossible updated_at
            "11,Jo,j@x.org,3,1.00,05.01.1980,",  # 12 no updated_at: not a type error
            "12,Kim,k@x.org,3,1.00,05.01.1980,2023-01-05 10:00:00" + "x" * 0,  # 13 good
            "13," + "N" * 25 + ",l@x.org,3,1.00,05.01.1980,2023-01-05 10:00:00",  # 14 over-long name
        ],
    )
    src = SourceConfig(
        name="crm",
        kind="customers",
        format="csv",
        path=str(tmp_path / "c.csv"),
        id_columns=["id"],
        required=["email"],
        types={"visits": "int", "amount": "decimal", "dob": "date"},
        type_formats={"dob": ["dd.MM.yyyy"]},
        updated_at={"column": "modified", "formats": ["yyyy-MM-dd HH:mm:ss"]},
    )
    batch = read_csv(spark, src, list_files(spark, src))
    got = reasons_by_line(batch, src, max_len=20)
    assert got == {
        2: None,
        3: 'malformed_csv: unbalanced quotes (")',
        4: "malformed_csv: the line does not split into the header's 7 fields",
        5: "invalid_encoding: name holds bytes that are not valid text (U+FFFD)",
        6: "missing_id: id is empty",
        7: "missing_required: email is empty",
        8: "invalid_type: visits='many' is not a int",
        9: "invalid_type: amount='1.0.0' is not a decimal",
        10: "invalid_type: dob='1980-01-05' is not a date (dd.MM.yyyy)",
        11: "invalid_type: modified='2023-02-30 10:00:00' is not a timestamp (yyyy-MM-dd HH:mm:ss)",
        12: None,
        13: None,
        14: "overlong_field: name has 25 characters (max 20)",
    }


def test_json_lines_that_do_not_parse_or_lack_their_reference_are_rejected(spark, tmp_path):
    write_jsonl(
        tmp_path / "orders.jsonl",
        [
            {"order_id": "O1", "account": "A1", "ts": "2024-01-05T10:00:00Z", "address": {"city": "Kraków"}},
            '{"order_id": "O2", "account": "A1", "ts": "2024-01-05T10:',  # cut short
            "{'order_id': 'O3', 'account': 'A1'}",  # single quotes
            '["O4", "A1"]',  # not an object
            {"order_id": "O5", "account": None, "ts": "2024-01-05T10:00:00Z"},  # no customer reference
            {"order_id": "O6", "account": "A2", "ts": "2024-01-05T10:00:00Z", "address": {"city": "C" * 30}},
            b'{"order_id": "O7", "account": "A2", "note": "\xff"}',
        ],
    )
    src = SourceConfig(
        name="web_orders",
        kind="orders",
        format="json",
        path=str(tmp_path / "orders.jsonl"),
        id_columns=["order_id"],
        customer_ref={"column": "account", "source": "web"},
    )
    batch = read_json_lines(spark, src, list_files(spark, src))
    got = reasons_by_line(batch, src, max_len=20)
    assert {line: (r.split(":", 1)[0] if r else None) for line, r in got.items()} == {
        1: None,
        2: "invalid_json",
        3: "invalid_json",
        4: "invalid_json",
        5: "missing_id",
        6: "overlong_field",
        7: "invalid_encoding",
    }
    assert got[5] == "missing_id: account (customer reference) is empty"
    assert got[6] == "overlong_field: address.city has 30 characters (max 20)"
    assert got[4] == "invalid_json: the line is not a JSON object"


def test_checks_on_a_column_the_data_lacks_are_left_to_the_drift_check(spark):
    src = SourceConfig(
        name="s", kind="customers", format="parquet", path="/x", id_columns=["id"], required=["email"],
        types={"age": "int"},
    )
    df = spark.createDataFrame([("1",), ("",)], "id string").withColumn("_source_line", F.lit(None).cast("long"))
    got = classify(df, src, ["id"], 2000).select(REASON).collect()
    assert sorted(r[0] or "" for r in got) == ["", "missing_id: id is empty"]
