"""Behaviour of the lake (``cdi.lake.Lake``), run once per storage engine.

Every test takes the ``lake`` fixture, parametrised over delta-spark (the engine everywhere its
jars are) and the ``deltalake`` fallback. delta-spark is never skipped: a session without its
classes is a broken install, and the test fails saying so.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdi.lake import (
    ConcurrentWriteError,
    ConstraintViolationError,
    MergeSpec,
    Lake,
    LakeError,
    ReplaceWhereMismatchError,
    SchemaMismatchError,
    TableNotFoundError,
)

ENGINES = ["deltalake", "delta-spark"]


@pytest.fixture(params=ENGINES)
def lake(request, spark, lake_root) -> Lake:
    from cdi.spark import delta_classes_available

    if request.param == "delta-spark":
        assert delta_classes_available(spark), "delta-spark's jars are not on the test session's classpath: run install.sh"
    return Lake(spark, str(lake_root), job="test-job", run_id="run-1", engine=request.param)


# ---------------------------------------------------------------------------- helpers
MIXED = T.StructType(
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
    ]
)
SIMPLE = "id long, grp string"


def rows_of(df, *cols) -> list[tuple]:
    return sorted(tuple(r) for r in df.select(*(cols or df.columns)).collect())


def tree(folder: Path) -> list[str]:
    """Every file and folder under ``folder``: what a reader of the table folder would see."""
    out = []
    for parent, dirs, files in os.walk(folder):
        out += [os.path.relpath(os.path.join(parent, n), folder) + "/" for n in dirs]
        out += [os.path.relpath(os.path.join(parent, n), folder) for n in files]
    return sorted(out)


def parquet_on_disk(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*.parquet") if "_delta_log" not in p.parts}


def files_of_every_version(lake: Lake, table: str) -> set[str]:
    return {p for v in range(lake.version(table) + 1) for p in lake.file_paths(table, version=v)}


def barrier_udf(folder: Path, me: str, other: str, timeout: float = 30.0):
    """A pass-through UDF that holds its task until the other writer's task has started too,
    so both writers are mid-write (their snapshots taken) before either commits."""
    mine, theirs = str(folder / me), str(folder / other)

    @F.udf("long")
    def wait_for_other(x):
        import os as _os
        import time as _time

        open(mine, "a").close()
        deadline = _time.time() + timeout
        while not _os.path.exists(theirs) and _time.time() < deadline:
            _time.sleep(0.02)
        return x

    return wait_for_other


def assert_only_vacuum_leftovers(lake: Lake, lake_root: Path, before_tree: list[str]) -> None:
    """After a failed write the lake holds exactly what it held before: on the deltalake engine
    at once (it removes its staged files); on delta-spark the tasks that finished leave
    unreferenced Parquet files, invisible to readers, that VACUUM removes."""
    if lake.engine_name == "deltalake":
        assert tree(lake_root) == before_tree  # no orphan, staging or new-table folder left behind
        return
    lake.vacuum("t", retention_hours=0)
    referenced = {str(Path(p)) for p in lake.file_paths("t")}
    assert parquet_on_disk(lake_root / "t") == referenced
    outside = [p for p in before_tree if not p.startswith("t/")]
    assert [p for p in tree(lake_root) if not p.startswith("t/")] == outside  # no new-table folder


def run_in_threads(*calls):
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            results[i] = call()
        except BaseException as exc:  # noqa: BLE001 - the test inspects what each writer got
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


# ---------------------------------------------------------------------------- reading and writing
def test_round_trip_keeps_mixed_types_and_nulls(lake, spark):
    df = spark.createDataFrame(
        [
            (1, "Ann", 1.5, Decimal("1234.50"), dt.date(1980, 2, 29), dt.datetime(2024, 5, 6, 7, 8, 9, 123456), True, ["a", "b"], (7, "Leeds")),
            (2, "Bo", -0.25, Decimal("-0.01"), dt.date(1900, 1, 1), dt.datetime(1999, 12, 31, 23, 59, 59), False, [], (None, None)),
            (3, None, None, None, None, None, None, None, None),
        ],
        MIXED,
    )
    lake.write("silver/mixed", df)
    back = lake.read("silver/mixed")
    assert back.schema == MIXED
    assert_df_equality(back, df, ignore_row_order=True)


def test_reading_a_missing_table_raises_table_not_found(lake, spark):
    assert not lake.exists("silver/nothing")
    with pytest.raises(TableNotFoundError, match="silver/nothing"):
        lake.read("silver/nothing")
    empty = lake.read_or_empty("silver/nothing", T.StructType([T.StructField("id", T.LongType())]))
    assert empty.count() == 0 and empty.columns == ["id"]


def test_empty_dataframe_creates_a_readable_empty_table_with_its_schema(lake, spark):
    lake.write("silver/empty", spark.createDataFrame([], MIXED))
    assert lake.exists("silver/empty")
    back = lake.read("silver/empty")
    assert back.schema == MIXED
    assert back.count() == 0


def test_time_travel_by_version_and_by_timestamp(lake, spark):
    lake.write("t", spark.createDataFrame([(1, "a")], SIMPLE))
    time.sleep(0.02)
    lake.write("t", spark.createDataFrame([(2, "a")], SIMPLE))
    time.sleep(0.02)
    lake.write("t", spark.createDataFrame([(3, "b")], SIMPLE), mode="overwrite")

    assert rows_of(lake.read("t", version=0), "id") == [(1,)]
    assert rows_of(lake.read("t", version=1), "id") == [(1,), (2,)]
    assert rows_of(lake.read("t"), "id") == [(3,)]
    committed = {h["version"]: h["timestamp"] for h in lake.history("t")}
    assert rows_of(lake.read("t", timestamp=committed[1]), "id") == [(1,), (2,)]
    assert rows_of(lake.read("t", timestamp=committed[2] + dt.timedelta(seconds=1)), "id") == [(3,)]
    with pytest.raises(LakeError):
        lake.read("t", timestamp=committed[0] - dt.timedelta(hours=1))
    with pytest.raises(LakeError):
        lake.read("t", version=42)


def test_replace_where_overwrites_only_the_matching_rows(lake, spark):
    lake.write("t", spark.createDataFrame([(1, "a"), (2, "b"), (3, "a"), (4, "b")], SIMPLE).coalesce(1))
    lake.write("t", spark.createDataFrame([(10, "a")], SIMPLE), mode="overwrite", replace_where="grp = 'a'")
    assert rows_of(lake.read("t")) == [(2, "b"), (4, "b"), (10, "a")]
    assert lake.history("t", limit=1)[0]["operation"] == "OVERWRITE"


def test_a_table_can_be_overwritten_from_its_own_read(lake, spark):
    lake.write("t", spark.createDataFrame([(1, "a"), (2, "b")], SIMPLE))
    lake.write("t", lake.read("t").withColumn("id", F.col("id") * 10), mode="overwrite")
    assert rows_of(lake.read("t")) == [(10, "a"), (20, "b")]
    assert rows_of(lake.read("t", version=0)) == [(1, "a"), (2, "b")]


def test_replace_where_refuses_rows_outside_its_condition(lake, spark):
    lake.write("t", spark.createDataFrame([(1, "a"), (2, "b")], SIMPLE))
    before = lake.version("t")
    with pytest.raises(ReplaceWhereMismatchError, match="grp = 'a'"):
        lake.write("t", spark.createDataFrame([(10, "a"), (11, "b")], SIMPLE), mode="overwrite", replace_where="grp = 'a'")
    assert lake.version("t") == before
    assert rows_of(lake.read("t")) == [(1, "a"), (2, "b")]


def test_replace_partitions_overwrites_only_the_named_partitions(lake, spark, lake_root):
    schema = "id long, country string, day date"
    lake.write(
        "p",
        spark.createDataFrame([(1, "DE", dt.date(2024, 1, 1)), (2, "FR", dt.date(2024, 1, 1)), (3, None, dt.date(2024, 1, 2))], schema),
        partition_by=["country"],
    )
    assert lake.partition_columns("p") == ["country"]
    lake.write("p", spark.createDataFrame([(20, "FR", dt.date(2024, 2, 2))], schema), mode="overwrite", replace_partitions={"country": "FR"})
    lake.write("p", spark.createDataFrame([(30, None, None)], schema), mode="overwrite", replace_partitions={"country": None})
    assert rows_of(lake.read("p"), "id", "country") == [(1, "DE"), (20, "FR"), (30, None)]
    with pytest.raises(ReplaceWhereMismatchError):
        lake.write("p", spark.createDataFrame([(40, "DE", None)], schema), mode="overwrite", replace_partitions={"country": "FR"})
    with pytest.raises(SchemaMismatchError, match="day"):
        lake.write("p", spark.createDataFrame([(40, "DE", None)], schema), mode="overwrite", replace_partitions={"day": None})


def test_partition_values_with_special_characters_and_nulls_round_trip(lake, spark):
    values = ["a b", "x/y", "p%q", "k=v", "ü*?[]{}", "a:b,c", "007", None]
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "id long, k string")
    lake.write("p", df, partition_by=["k"])
    assert rows_of(lake.read("p")) == sorted((i, v) for i, v in enumerate(values))
    files = lake.file_paths("p")
    assert files and all(os.path.isfile(f) for f in files)
    lake.delete("p", "k = 'a b' OR k IS NULL")
    lake.write("p", spark.createDataFrame([(99, "x/y")], "id long, k string"), mode="overwrite", replace_partitions={"k": "x/y"})
    expected = sorted((i, v) for i, v in enumerate(values) if v not in ("a b", None, "x/y")) + [(99, "x/y")]
    assert rows_of(lake.read("p")) == sorted(expected)


# ---------------------------------------------------------------------------- schema
def test_new_columns_are_added_only_when_asked_for(lake, spark):
    lake.write("t", spark.createDataFrame([(1, "a")], SIMPLE))
    before = lake.version("t")
    wider = spark.createDataFrame([(2, "b", "x@example.com", 3)], "id long, grp string, email string, n int")
    with pytest.raises(SchemaMismatchError) as err:
        lake.write("t", wider)
    assert "email" in str(err.value) and "'n'" in str(err.value) and "allow_new_columns" in str(err.value)
    assert lake.version("t") == before

    lake.write("t", wider, allow_new_columns=True)
    back = lake.read("t")
    assert back.columns == ["id", "grp", "email", "n"]
    assert rows_of(back) == [(1, "a", None, None), (2, "b", "x@example.com", 3)]


def test_a_column_type_change_is_a_clear_error(lake, spark):
    lake.write("t", spark.createDataFrame([(1, "a")], SIMPLE))
    with pytest.raises(SchemaMismatchError, match=r"id: table has bigint, data has int"):
        lake.write("t", spark.createDataFrame([(2, "b")], "id int, grp string"), allow_new_columns=True)
    assert rows_of(lake.read("t")) == [(1, "a")]


def test_writes_match_columns_by_name_fill_missing_ones_and_ignore_nullability(lake, spark):
    lake.write("t", spark.createDataFrame([(1, "a", ["x"])], "id long, grp string, tags array<string>"))
    # other order, other case, a missing column, and Spark's non-null markers on literals/arrays
    lake.write("t", spark.range(1).select(F.array(F.lit("y")).alias("tags"), (F.col("id") + 2).alias("ID")))
    assert rows_of(lake.read("t")) == [(1, "a", ["x"]), (2, None, ["y"])]


# ---------------------------------------------------------------------------- history, delete, vacuum
def test_every_commit_records_operation_job_and_run_id(lake, spark):
    lake.write("t", spark.createDataFrame([(1, "a")], SIMPLE), metadata={"batch_id": "b-7"})
    other = lake.with_context(job="nightly", run_id="run-2")
    other.write("t", spark.createDataFrame([(2, "b")], SIMPLE), operation="INGEST")
    other.write("t", spark.createDataFrame([(3, "c", "x")], "id long, grp string, extra string"), allow_new_columns=True)
    other.delete("t", "id = 1")
    lake.write("t", spark.createDataFrame([(4, "d")], SIMPLE), mode="overwrite")

    history = lake.history("t")
    assert [h["version"] for h in history] == sorted((h["version"] for h in history), reverse=True)
    for entry in history:
        assert entry["operation"] and entry["job"] and entry["run_id"], entry
        assert isinstance(entry["timestamp"], dt.datetime)
    ops = [(h["operation"], h["job"], h["run_id"]) for h in history if h["operation"] != "ADD COLUMNS"]
    assert ops == [
        ("OVERWRITE", "test-job", "run-1"),
        ("DELETE", "nightly", "run-2"),
        ("APPEND", "nightly", "run-2"),
        ("INGEST", "nightly", "run-2"),
        ("APPEND", "test-job", "run-1"),
    ]
    assert history[-1]["metadata"]["batch_id"] == "b-7"
    assert history[1]["metadata"]["predicate"] == "id = 1"
    assert lake.history("t", limit=2) == history[:2]


def test_delete_removes_only_the_matching_rows(lake, spark):
    lake.write("t", spark.createDataFrame([(1, "a"), (2, "b"), (3, "a")], SIMPLE).coalesce(1))
    lake.delete("t", "grp = 'a' AND id > 1")
    assert rows_of(lake.read("t")) == [(1, "a"), (2, "b")]
    version = lake.version("t")
    lake.delete("t", "id > 100")
    assert rows_of(lake.read("t")) == [(1, "a"), (2, "b")]
    assert lake.version("t") in (version, version + 1)  # an empty delete may or may not commit


def test_vacuum_removes_files_of_overwritten_versions_and_the_table_still_reads(lake, spark, lake_root):
    lake.write("t", spark.createDataFrame([(1, "a"), (2, "b")], SIMPLE))
    lake.write("t", spark.createDataFrame([(3, "c")], SIMPLE), mode="overwrite")
    folder = lake_root / "t"
    current = {str(Path(p)) for p in lake.file_paths("t")}
    assert parquet_on_disk(folder) > current  # the overwritten version's files are still there

    # what a writer killed outright (no chance to clean up) leaves: a file the log never names
    (folder / "part-00000-orphan-of-a-killed-writer.snappy.parquet").write_bytes(b"not committed")
    lake.vacuum("t", retention_hours=168)
    assert parquet_on_disk(folder) > current  # younger than the retention: kept for time travel
    lake.vacuum("t", retention_hours=0)
    assert parquet_on_disk(folder) == current
    assert rows_of(lake.read("t")) == [(3, "c")]
    assert all(h["job"] == "test-job" for h in lake.history("t"))


# ---------------------------------------------------------------------------- failures and races
def test_a_write_whose_task_fails_leaves_the_table_unchanged_and_no_files(lake, spark, lake_root):
    lake.write("t", spark.createDataFrame([(i, "a" if i % 2 else "b") for i in range(6)], SIMPLE))
    before_rows, before_version, before_tree = rows_of(lake.read("t")), lake.version("t"), tree(lake_root)

    # the task writing row 13 fails on the executor, after its partition's other rows were written
    explode_on_row_13 = F.when(F.col("id") == 13, F.raise_error(F.lit("simulated executor failure on row 13")))
    failing = spark.createDataFrame([(i, "a") for i in range(10, 20)], SIMPLE).withColumn(
        "id", explode_on_row_13.otherwise(F.col("id"))
    )
    with pytest.raises(Exception, match="simulated executor failure"):
        lake.write("t", failing)
    with pytest.raises(Exception, match="simulated executor failure"):
        lake.write("t", failing, mode="overwrite", replace_where="grp = 'a'")
    with pytest.raises(Exception, match="simulated executor failure"):
        lake.write("new_table", failing)

    assert lake.version("t") == before_version
    assert rows_of(lake.read("t")) == before_rows
    assert not lake.exists("new_table") and not (lake_root / "new_table").exists()
    assert_only_vacuum_leftovers(lake, lake_root, before_tree)


def test_a_table_whose_first_commit_never_landed_is_created_afresh(lake, spark, lake_root):
    """What a full disk or a kill during a table's first commit leaves: a log folder holding only
    an unfinished temporary commit, and a part file. The next write must create the table."""
    cols = "record_key string, source string, customer_id string"
    for table in ("silver/entity_map", "t"):
        log_dir = lake_root / table / "_delta_log"
        (log_dir / "_staged_commits").mkdir(parents=True)
        (log_dir / ".00000000000000000000.json.3ff9fbe1-a79d-44c8-aa44-1172ccc7845c.tmp").write_bytes(b"")
        (lake_root / table / "part-00000-left-behind.snappy.parquet").write_bytes(b"PAR1")
        assert not lake.exists(table)
        lake.write(table, spark.createDataFrame([("a:1", "a", "C1")], cols))
        assert rows_of(lake.read(table)) == [("a:1", "a", "C1")]
        assert not (lake_root / table / "part-00000-left-behind.snappy.parquet").exists()


def test_a_cancelled_write_leaves_the_table_unchanged_and_no_files(lake, spark, lake_root, tmp_path):
    lake.write("t", spark.createDataFrame([(1, "a")], SIMPLE))
    before_tree = tree(lake_root)
    started = str(tmp_path / "task-started")

    @F.udf("long")
    def slow(x):
        import time as _time

        open(started, "a").close()
        _time.sleep(0.3)
        return x

    sc = spark.sparkContext
    slow_rows = spark.range(0, 60, numPartitions=4).select(F.col("id"), F.lit("z").alias("grp")).withColumn("id", slow("id"))

    def write_in_job_group():
        sc.setJobGroup("lake-test-cancel", "cancel a write mid-way")
        return lake.write("t", slow_rows)

    def cancel_once_running():
        deadline = time.time() + 60
        while not os.path.exists(started) and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # let some tasks finish and leave files in the staging folder
        sc.cancelJobGroup("lake-test-cancel")

    result, _ = run_in_threads(write_in_job_group, cancel_once_running)
    assert isinstance(result, Exception) and "cancel" in str(result).lower()
    assert rows_of(lake.read("t")) == [(1, "a")]
    assert_only_vacuum_leftovers(lake, lake_root, before_tree)


def test_two_concurrent_appends_both_land(lake, spark, tmp_path):
    lake.write("t", spark.createDataFrame([(0, "seed")], SIMPLE))
    first = spark.createDataFrame([(1, "w1"), (2, "w1")], SIMPLE).coalesce(1)
    second = spark.createDataFrame([(3, "w2")], SIMPLE).coalesce(1)
    first = first.withColumn("id", barrier_udf(tmp_path, "one", "two")("id"))
    second = second.withColumn("id", barrier_udf(tmp_path, "two", "one")("id"))
    other = Lake(spark, lake.root, job="other-writer", run_id="run-9", engine=lake.engine)

    results = run_in_threads(lambda: lake.write("t", first), lambda: other.write("t", second))

    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(r.version for r in results) == [1, 2]
    assert rows_of(lake.read("t")) == [(0, "seed"), (1, "w1"), (2, "w1"), (3, "w2")]


def test_conflicting_concurrent_rewrites_fail_one_writer_and_keep_the_table_consistent(lake, spark, lake_root, tmp_path):
    lake.write("t", spark.createDataFrame([(1, "a"), (2, "b"), (3, "a")], SIMPLE).coalesce(1))
    first = spark.createDataFrame([(10, "a")], SIMPLE).coalesce(1).withColumn("id", barrier_udf(tmp_path, "one", "two")("id"))
    second = spark.createDataFrame([(20, "a")], SIMPLE).coalesce(1).withColumn("id", barrier_udf(tmp_path, "two", "one")("id"))

    results = run_in_threads(
        lambda: lake.write("t", first, mode="overwrite", replace_where="grp = 'a'"),
        lambda: lake.write("t", second, mode="overwrite", replace_where="grp = 'a'"),
    )

    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], ConcurrentWriteError), results
    assert "t" in str(failed[0]) and "Re-run" in str(failed[0])
    winner_id = 10 if not isinstance(results[0], BaseException) else 20
    assert rows_of(lake.read("t")) == sorted([(2, "b"), (winner_id, "a")])
    assert lake.version("t") == 1
    # the loser's files are gone (delta-spark: unreferenced, so VACUUM removes them)
    if lake.engine_name == "delta-spark":
        lake.vacuum("t", retention_hours=0)
        assert parquet_on_disk(lake_root / "t") == {str(Path(p)) for p in lake.file_paths("t")}
    else:
        assert parquet_on_disk(lake_root / "t") <= {str(Path(p)) for p in files_of_every_version(lake, "t")}
    assert not [p for p in (lake_root / "t").iterdir() if "staging" in p.name]


# ---------------------------------------------------------------------------- Delta features
SCD = "customer_id string, city string, valid_from int, valid_to int, is_current boolean"


def test_merge_closes_changed_rows_and_inserts_new_versions_in_one_commit(lake, spark):
    lake.write(
        "g",
        spark.createDataFrame([("c1", "Leeds", 1, None, True), ("c2", "York", 1, None, True), ("c0", "Hull", 0, 1, False)], SCD),
        partition_by=["is_current"],
    )
    before = lake.version("g")
    # c1 moves (close + new version), c2 retires (close only), c3 is new (insert only)
    source = spark.createDataFrame(
        [("c1", "c1", "Leeds", 2), ("c2", "c2", None, 2), (None, "c1", "Bath", 2), (None, "c3", "Ely", 2)],
        "merge_key string, customer_id string, city string, valid_from int",
    ).withColumn("valid_to", F.lit(None).cast("int")).withColumn("is_current", F.lit(True))
    spec = MergeSpec(
        keys=(("customer_id", "merge_key"),),
        target_condition="t.is_current",
        update=(("is_current", "false"), ("valid_to", "s.valid_from")),
        insert_condition="s.merge_key IS NULL",
    )
    result = lake.merge("g", source, spec, operation="SCD2 UPDATE")

    assert result.version == before + 1 == lake.version("g")
    assert rows_of(lake.read("g")) == [
        ("c0", "Hull", 0, 1, False),
        ("c1", "Bath", 2, None, True),
        ("c1", "Leeds", 1, 2, False),
        ("c2", "York", 1, 2, False),
        ("c3", "Ely", 2, None, True),
    ]
    assert lake.history("g", limit=1)[0]["operation"] == "SCD2 UPDATE"


def test_merge_can_sync_a_table_updating_inserting_and_deleting(lake, spark):
    lake.write("m", spark.createDataFrame([("r1", "A"), ("r2", "A"), ("r3", "B")], "record_key string, customer_id string"))
    source = spark.createDataFrame([("r1", "A"), ("r2", "C"), ("r4", "D")], "record_key string, customer_id string")
    lake.merge(
        "m",
        source,
        MergeSpec(
            keys=(("record_key", "record_key"),),
            update=(("customer_id", "s.customer_id"),),
            update_condition="NOT (t.customer_id <=> s.customer_id)",
            delete_unmatched=True,
        ),
    )
    assert rows_of(lake.read("m")) == [("r1", "A"), ("r2", "C"), ("r4", "D")]


def test_change_feed_gives_inserts_updates_and_deletes_of_a_contract_table(lake, spark):
    cols = "record_key string, source string, customer_id string"
    lake.write("silver/entity_map", spark.createDataFrame([("a:1", "a", "C1"), ("a:2", "a", "C1")], cols))
    assert lake.properties("silver/entity_map").get("delta.enableChangeDataFeed") == "true"
    first = lake.version("silver/entity_map")
    lake.merge(
        "silver/entity_map",
        spark.createDataFrame([("a:1", "a", "C1"), ("a:2", "a", "C2"), ("a:3", "a", "C3")], cols),
        MergeSpec(keys=(("record_key", "record_key"),), update=(("customer_id", "s.customer_id"),),
                  update_condition="NOT (t.customer_id <=> s.customer_id)"),
    )
    lake.delete("silver/entity_map", "record_key = 'a:1'")

    feed = lake.changes("silver/entity_map", first + 1)
    got = sorted((r["record_key"], r["customer_id"], r["_change_type"]) for r in feed.collect())
    if lake.engine_name == "delta-spark":
        assert got == [("a:1", "C1", "delete"), ("a:2", "C1", "update_preimage"), ("a:2", "C2", "update_postimage"),
                       ("a:3", "C3", "insert")]
    else:  # the fallback infers changes from whole files: an update is a delete and an insert
        assert got == [("a:1", "C1", "delete"), ("a:2", "C1", "delete"), ("a:2", "C2", "insert"), ("a:3", "C3", "insert")]
    assert {r["_commit_version"] for r in feed.collect()} == {first + 1, first + 2}
    initial = sorted((r["record_key"], r["_change_type"]) for r in lake.changes("silver/entity_map", 0, first).collect())
    assert initial == [("a:1", "insert"), ("a:2", "insert")]


def test_contract_tables_refuse_rows_without_their_keys(lake, spark):
    cols = "record_key string, source string, customer_id string"
    lake.write("silver/entity_map", spark.createDataFrame([("a:1", "a", "C1")], cols))
    version = lake.version("silver/entity_map")
    with pytest.raises(ConstraintViolationError, match="silver/entity_map"):
        lake.write("silver/entity_map", spark.createDataFrame([("a:2", "a", None)], cols))
    assert lake.version("silver/entity_map") == version
    assert rows_of(lake.read("silver/entity_map")) == [("a:1", "a", "C1")]


def test_restore_brings_back_an_old_version_as_a_new_commit(lake, spark):
    lake.write("t", spark.createDataFrame([(1, "a")], SIMPLE))
    lake.write("t", spark.createDataFrame([(2, "b")], SIMPLE), mode="overwrite")
    result = lake.restore("t", 0)
    assert result.version == 2 and rows_of(lake.read("t")) == [(1, "a")]
    assert lake.history("t", limit=1)[0]["operation"] == "RESTORE"


def test_optimize_compacts_small_files_and_keeps_the_rows(lake, spark):
    for i in range(4):
        lake.write("t", spark.createDataFrame([(i, "a")], SIMPLE).coalesce(1))
    assert len(lake.file_paths("t")) == 4
    done = lake.optimize("t")
    assert done["files_removed"] == 4 and len(lake.file_paths("t")) == 1
    assert rows_of(lake.read("t")) == [(0, "a"), (1, "a"), (2, "a"), (3, "a")]


def test_a_failed_transaction_rolls_every_table_back(lake, spark):
    lake.write("a", spark.createDataFrame([(1, "a")], SIMPLE))
    with pytest.raises(RuntimeError, match="boom"):
        with lake.transaction("pair", ["a", "b"]) as tx:
            tx.write("a", spark.createDataFrame([(2, "a")], SIMPLE))
            tx.write("b", spark.createDataFrame([(3, "b")], SIMPLE))
            raise RuntimeError("boom")
    assert rows_of(lake.read("a")) == [(1, "a")]
    assert lake.read("b").count() == 0
    with lake.transaction("pair", ["a", "b"]) as tx:
        tx.write("a", spark.createDataFrame([(2, "a")], SIMPLE))
        tx.write("b", spark.createDataFrame([(3, "b")], SIMPLE))
    assert rows_of(lake.read("a")) == [(1, "a"), (2, "a")] and rows_of(lake.read("b")) == [(3, "b")]
    assert lake.history("a", limit=1)[0]["metadata"]["txn_id"]


_KILLED_WRITER = """
import os, signal, sys
from cdi.spark import SparkSettings, build_session
from cdi.lake import Lake
spark = build_session(SparkSettings(master="local[1]", shuffle_partitions=1, conf={"spark.ui.enabled": "false"}))
lake = Lake(spark, sys.argv[1], job="killed", run_id="dead-run", engine=sys.argv[2])
with lake.transaction("pair", ["a", "b"]) as tx:
    tx.write("a", spark.createDataFrame([(2, "a")], "id long, grp string"))
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_transaction_killed_between_commits_is_rolled_back_by_the_next_writer(lake, spark, lake_root):
    import subprocess
    import sys

    lake.write("a", spark.createDataFrame([(1, "a")], SIMPLE))
    lake.write("b", spark.createDataFrame([(1, "b")], SIMPLE))
    done = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(lake_root), lake.engine_name], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-3000:]
    assert rows_of(lake.read("a")) == [(1, "a"), (2, "a")]  # half of the transaction landed

    assert lake.recover() == ["pair"]
    assert rows_of(lake.read("a")) == [(1, "a")] and rows_of(lake.read("b")) == [(1, "b")]
    assert lake.recover() == []


def test_tables_written_by_one_engine_are_read_and_extended_by_the_other(lake, spark, lake_root):
    other = Lake(spark, str(lake_root), job="other", engine="deltalake" if lake.engine_name == "delta-spark" else "delta-spark")
    lake.write("p", spark.createDataFrame([(1, "a"), (2, "b")], SIMPLE), partition_by=["grp"])
    lake.write("silver/entity_map", spark.createDataFrame([("a:1", "a", "C1")], "record_key string, source string, customer_id string"))
    assert rows_of(other.read("p")) == [(1, "a"), (2, "b")]
    other.write("p", spark.createDataFrame([(3, "a")], SIMPLE))
    other.write("p", spark.createDataFrame([(20, "b")], SIMPLE), mode="overwrite", replace_partitions={"grp": "b"})
    assert rows_of(lake.read("p")) == [(1, "a"), (3, "a"), (20, "b")]
    assert rows_of(other.read("silver/entity_map")) == [("a:1", "a", "C1")]
    assert sorted(lake.tables()) == ["p", "silver/entity_map"]


# ---------------------------------------------------------------------------- delta-rs file statistics
def test_file_statistics_bound_every_value_even_when_they_cannot_be_exact(tmp_path):
    """Readers skip files by these bounds; a maximum rounded down would hide rows."""
    import json

    from cdi.lake.stats import file_stats

    table = pa.table(
        {
            "ts": pa.array([dt.datetime(2024, 1, 1, 0, 0, 0, 1), dt.datetime(2024, 1, 1, 0, 0, 0, 999001)], pa.timestamp("us", tz="UTC")),
            "exact": pa.array([Decimal("0.10"), Decimal("2.50")], pa.decimal128(12, 2)),
            "wide": pa.array([Decimal("12345678901234567.89"), Decimal("1")], pa.decimal128(38, 2)),
            "x": pa.array([1.0, float("nan")]),
            "s": pa.array(["short", "y" * 40]),
        }
    )
    pq.write_table(table, tmp_path / "f.parquet")
    stats = json.loads(file_stats(pq.ParquetFile(tmp_path / "f.parquet").metadata))
    assert stats["numRecords"] == 2
    assert stats["minValues"]["ts"] == "2024-01-01T00:00:00.000Z"
    assert stats["maxValues"]["ts"] == "2024-01-01T00:00:01.000Z"  # rounded up, not down to .999
    assert (stats["minValues"]["exact"], stats["maxValues"]["exact"]) == (0.1, 2.5)
    for inexact in ("wide", "x", "s"):  # float-unsafe decimal, floating point, over-long string
        assert inexact not in stats["minValues"] and inexact not in stats["maxValues"]
    assert stats["nullCount"]["s"] == 0


def test_a_commits_added_rows_are_read_from_its_file_statistics(lake, spark, lake_root):
    first = lake.write("t/a", spark.createDataFrame([(1,), (2,), (3,)], "n long"))
    second = lake.write("t/a", spark.createDataFrame([(4,)], "n long"))
    assert (lake.rows_added("t/a", first.version), lake.rows_added("t/a", second.version)) == (3, 1)
    os.remove(lake_root / "t" / "a" / "_delta_log" / f"{first.version:020d}.json")
    assert lake.rows_added("t/a", first.version) is None  # gone with log retention: the caller counts


def test_the_delta_log_keeps_statistics_of_key_columns_only(lake, spark, lake_root):
    """Delta's per-file min/max live in the log for as long as the log does, long after a DELETE
    and a VACUUM: a customer's values must never be among them."""
    import glob

    people = spark.createDataFrame(
        [("C1", "crm:1", "zed.zulu@example.com", "Zed Zulu"), ("C2", "crm:2", "aaron.able@example.com", "Aaron Able")],
        "customer_id string, record_key string, email string, full_name string",
    )
    lake.write("gold/customer_360", people)  # a contract table, created empty first
    lake.write("gold/segments", people.select("customer_id", F.lit("vip").alias("segment")))  # created by its write
    raw = people.select(F.lit("crm").alias("_source"), F.col("record_key").alias("_source_record_id"),
                        F.lit("b1").alias("_batch_id"), F.col("record_key").alias("_row_hash"), "email", "full_name")  # fmt: skip
    lake.write("bronze/crm", raw, partition_by=["_source"])
    lake.delete("gold/customer_360", "customer_id = 'C1'")
    log_text = "".join(open(f, encoding="utf-8").read() for f in glob.glob(f"{lake_root}/**/_delta_log/*.json", recursive=True))
    assert "minValues" in log_text and "C1" in log_text  # statistics are kept, on the keys
    for value in ("zed.zulu", "aaron.able", "Zed Zulu", "Aaron Able"):
        assert value not in log_text
    assert lake.properties("gold/customer_360")["delta.dataSkippingStatsColumns"] == "`customer_id`,`record_key`"
    assert lake.read("gold/customer_360").where("email LIKE 'aaron%'").count() == 1
