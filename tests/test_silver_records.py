"""silver/records from hand-built bronze tables: latest version per record, sources with
different mappings (dotted struct paths, JSON text, native Parquet types) unioned into one
canonical schema, overwrite per run, and clear errors for broken mappings."""

from __future__ import annotations

import datetime as dt

import pytest
from cdi.config import CdiConfig, MappedSpec, SourceConfig
from cdi.errors import SourceMappingError
from cdi.lake import Lake
from cdi.silver import records as R
from cdi.schema import RECORDS_COLUMNS as RECORD_COLUMNS
from cdi.schema import RECORDS_TYPES as RECORD_TYPES
from pyspark.sql import functions as F

T0 = dt.datetime(2024, 1, 1, 6, 0)

CRM = SourceConfig(
    name="crm", kind="customers", format="csv", path="/in/crm.csv", id_columns=["id"], default_country="PL",
    updated_at={"column": "zmiana", "formats": ["dd.MM.yyyy HH:mm"]},
    mapping={
        "first_name": "imie", "last_name": "nazwisko", "gender": "plec", "email": "mail", "phone": "tel",
        "date_of_birth": {"column": "urodzony", "formats": ["dd.MM.yyyy"]}, "address_line1": "adres",
        "city": "miasto", "postcode": "kod", "income": "dochod",
    },
)  # fmt: skip
SHOP = SourceConfig(
    name="shop", kind="customers", format="parquet", path="/in/shop.parquet", id_columns=["cid"],
    updated_at={"column": "changed"},
    mapping={
        "full_name": "name", "date_of_birth": "born", "phone": {"column": "phone", "default_region": "ES"},
        "address_line1": "address.line1", "city": "address.city", "postcode": "address.zip",
        "country": "address.country", "gender": "profile.sex", "income": "income", "income_currency": "ccy",
    },
)  # fmt: skip


LINEAGE = [("_source_record_id", "string"), ("_batch_id", "string"), ("_ingested_at", "timestamp"),
           ("_source_file", "string"), ("_row_hash", "string")]  # fmt: skip


def _bronze(spark, source: str, rows: list[dict], columns: list[tuple[str, str]]):
    """A bronze-shaped frame: lineage columns first, then the source's own columns."""
    names = [name for name, _ in LINEAGE + columns]
    schema = ", ".join(f"{name} {dtype}" for name, dtype in LINEAGE + columns)
    data = [tuple(row.get(n) for n in names) for row in rows]
    return spark.createDataFrame(data, schema).withColumn("_source", F.lit(source))


def _crm(spark):
    def row(rid, batch, ingested, changed, **values):
        return {"_source_record_id": rid, "id": rid, "_batch_id": batch, "_ingested_at": ingested, "zmiana": changed,
                "_source_file": f"/in/{batch}.csv", "_row_hash": f"{rid}-{batch}", **values}  # fmt: skip

    rows = [
        # record 1: the second batch was ingested later but carries an older change: the first wins
        row("1", "b1", T0, "02.03.2024 10:00", imie="ŁUKASZ", nazwisko="Kowalski", plec="M", mail="L.K@Gmail.com",
            tel="601 234 567", urodzony="05.03.1985", adres="ul. Długa 5", miasto="Kraków", kod="31000", dochod="72.000,00 zł"),
        row("1", "b2", T0 + dt.timedelta(days=1), "01.03.2024 09:00", imie="Old", nazwisko="Version"),
        # record 2: same change time in both batches: the later ingestion wins
        row("2", "b1", T0, "01.02.2024 08:00", imie="Kasia", nazwisko="Nowak", plec="k"),
        row("2", "b2", T0 + dt.timedelta(days=1), "01.02.2024 08:00", imie="Kasia", nazwisko="Nowak-Wójcik", plec="k",
            urodzony="31.02.1990", tel="12"),
        # record 3: an unreadable change time ranks below any readable one
        row("3", "b1", T0, "01.01.2020 00:00", imie="Gosia", nazwisko="Zielińska"),
        row("3", "b2", T0 + dt.timedelta(days=1), "someday", imie="Wrong", nazwisko="One"),
    ]  # fmt: skip
    names = ["id", "imie", "nazwisko", "plec", "mail", "tel", "urodzony", "adres", "miasto", "kod", "dochod", "zmiana"]
    return _bronze(spark, "crm", rows, [(name, "string") for name in names])


def _shop(spark):
    columns = [
        ("cid", "bigint"), ("name", "string"), ("born", "date"), ("phone", "string"),
        ("address", "struct<line1:string,city:string,zip:int,country:string>"), ("profile", "string"),
        ("income", "double"), ("ccy", "string"), ("changed", "timestamp"),
    ]  # fmt: skip
    rows = [
        {"_source_record_id": "77", "cid": 77, "_batch_id": "s1", "_ingested_at": T0, "_source_file": "/in/s1.parquet",
         "_row_hash": "h77", "name": "García López, José", "born": dt.date(1970, 12, 24), "phone": "612 345 678",
         "address": ("Avda. de América 4", "MADRID", 8001, "España"), "profile": '{"sex": "hombre"}',
         "income": 31000.5, "ccy": "eur", "changed": dt.datetime(2024, 5, 1, 12, 0)},
        {"_source_record_id": "78", "cid": 78, "_batch_id": "s1", "_ingested_at": T0, "_source_file": "/in/s1.parquet",
         "_row_hash": "h78", "name": "Mr Bill Smith", "phone": "+44 20 7946 0958",
         "address": ("12 Baker St", "London", None, "UK"), "profile": "not json"},
    ]  # fmt: skip
    return _bronze(spark, "shop", rows, columns)


def _config(root) -> CdiConfig:
    return CdiConfig(lake_root=str(root), sources=[CRM, SHOP])


@pytest.fixture(scope="module")
def written(spark, tmp_path_factory):
    """Bronze for two sources, silver/records written once: (cfg, lake, rows written, rows by key)."""
    root = tmp_path_factory.mktemp("records_lake")
    lake = Lake(spark, str(root), job="link", run_id="run-1")
    lake.write("bronze/crm", _crm(spark))
    lake.write("bronze/shop", _shop(spark))
    cfg = _config(root)
    count = R.write_records(lake, cfg.customer_sources)
    rows = {r.record_key: r for r in lake.read(R.RECORDS_TABLE).collect()}
    return cfg, lake, count, rows


def test_one_row_per_source_record_from_all_customer_sources(written):
    _, _, count, rows = written
    assert count == 5
    assert sorted(rows) == ["crm:1", "crm:2", "crm:3", "shop:77", "shop:78"]
    assert {(r.source, r.source_record_id) for r in rows.values()} >= {("crm", "1"), ("shop", "77")}


def test_latest_version_is_chosen_by_source_update_time_then_ingestion(written):
    rows = written[3]
    assert (rows["crm:1"]._batch_id, rows["crm:1"].first_name) == ("b1", "Łukasz")
    assert rows["crm:1"].updated_at == dt.datetime(2024, 3, 2, 10, 0)
    assert (rows["crm:2"]._batch_id, rows["crm:2"].last_name, rows["crm:2"]._row_hash) == ("b2", "Nowak-Wójcik", "2-b2")
    assert (rows["crm:3"]._batch_id, rows["crm:3"].first_name) == ("b1", "Gosia")


def test_union_has_the_canonical_schema_and_types(written):
    _, lake, _, _ = written
    schema = lake.read(R.RECORDS_TABLE).schema
    assert schema.fieldNames() == list(RECORD_COLUMNS)
    types = {f.name: f.dataType.simpleString() for f in schema.fields}
    assert {name: types[name] for name in RECORD_TYPES} == RECORD_TYPES
    assert all(types[n] == "string" for n in RECORD_COLUMNS if n not in RECORD_TYPES)


def test_text_source_values_are_standardised_with_its_formats_and_default_country(written):
    r = written[3]["crm:1"]
    assert (r.gender, r.email, r.email_std, r.phone_std) == ("M", "l.k@gmail.com", "lk@gmail.com", "+48601234567")
    assert (r.date_of_birth, r.dob_year, r.postcode, r.city_std, r.address_std) == (
        dt.date(1985, 3, 5), 1985, "31-000", "krakow", "ulica dluga 5",
    )
    assert (r.income, r.income_currency, r.quality_flags) == (72000.0, "PLN", [])
    kasia = written[3]["crm:2"]
    assert (kasia.given_name_canonical, kasia.gender, kasia.date_of_birth, kasia.phone) == ("katarzyna", "F", None, None)
    assert kasia.quality_flags == ["dob_unparseable", "phone_invalid"]


def test_nested_struct_json_text_and_native_types_are_read_through_the_mapping(written):
    jose, bill = written[3]["shop:77"], written[3]["shop:78"]
    assert (jose.first_name, jose.last_name, jose.gender) == ("José", "García López", "M")
    assert (jose.city, jose.postcode, jose.country, jose.address_std) == ("Madrid", "08001", "ES", "avenue de america 4")
    assert (jose.date_of_birth, jose.income, jose.income_currency, jose.phone_std) == (
        dt.date(1970, 12, 24), 31000.5, "EUR", "+34612345678",
    )
    assert jose.updated_at == dt.datetime(2024, 5, 1, 12, 0)
    assert (bill.honorific, bill.first_name, bill.given_name_canonical, bill.country, bill.gender) == ("Mr", "Bill", "william", "GB", None)
    assert bill.updated_at == T0  # no change time: the ingestion time stands in


def test_rerun_overwrites_silver_records_with_the_same_rows(written, spark):
    cfg, lake, count, rows = written
    assert R.write_records(lake, cfg.customer_sources) == count
    history = lake.history(R.RECORDS_TABLE)
    assert [h["operation"] for h in history[:2]] == ["STANDARDISE", "STANDARDISE"]
    again = {r.record_key: r for r in lake.read(R.RECORDS_TABLE).collect()}
    assert {k: (r.full_name, r._row_hash) for k, r in again.items()} == {k: (r.full_name, r._row_hash) for k, r in rows.items()}


def test_a_mapping_to_a_missing_column_names_the_table_and_the_columns(spark, lake_root):
    lake = Lake(spark, str(lake_root))
    lake.write("bronze/crm", _crm(spark))
    broken = CRM.model_copy(update={"mapping": {**CRM.mapping, "city": "town"}})
    cfg = CdiConfig(lake_root=str(lake_root), sources=[broken])
    with pytest.raises(SourceMappingError, match=r"bronze/crm \(source 'crm', city\): no column 'town'.*columns: .*miasto"):
        R.build_records(lake, cfg.customer_sources)


def test_a_path_into_a_scalar_or_a_missing_field_is_explained(spark):
    df = _shop(spark)
    with pytest.raises(SourceMappingError, match=r"'address' has no field 'street'.*fields: line1, city, zip, country"):
        R.resolve_column(df, "address.street", "bronze/shop")
    with pytest.raises(SourceMappingError, match=r"'income' is a double, not a struct"):
        R.resolve_column(df, "income.amount", "bronze/shop")
    _, dtype = R.resolve_column(df, "ADDRESS.City", "bronze/shop")
    assert dtype.simpleString() == "string"


def test_a_source_without_bronze_says_to_ingest_it_first(spark, lake_root):
    cfg = CdiConfig(lake_root=str(lake_root), sources=[CRM])
    with pytest.raises(SourceMappingError, match=r"bronze/crm does not exist.*run `cdi ingest`"):
        R.build_records(Lake(spark, str(lake_root)), cfg.customer_sources)


def test_an_invalid_date_pattern_is_reported_with_source_and_field(spark):
    bad = CRM.model_copy(update={"updated_at": CRM.updated_at.model_copy(update={"formats": ["dd.MM.bbbb"]})})
    with pytest.raises(SourceMappingError, match=r"source 'crm': updated_at format 'dd.MM.bbbb' is not a valid Spark datetime pattern"):
        R.check_formats(spark, bad)


MULTI = SourceConfig(
    name="reg", kind="customers", format="csv", path="/in/reg.csv", id_columns=["id"],
    mapping={
        "address_line1": ["street_no", "street", "unit"],
        "first_name": {"expr": "concat_ws(' ', given_1, given_2)"},
        "last_name": "family",
        "national_id": {"expr": "regexp_replace(ssn, '[^0-9]', '')"},
        "date_of_birth": {"expr": "make_date(cast(born_y as int), cast(born_m as int), cast(born_d as int))"},
        "city": {"columns": ["town", "district"], "separator": " - "},
    },
)  # fmt: skip
MULTI_COLUMNS = [(c, "string") for c in ("id", "street_no", "street", "unit", "given_1", "given_2", "family", "ssn",
                                         "born_y", "born_m", "born_d", "town", "district")]  # fmt: skip


def test_an_attribute_can_be_mapped_from_several_columns_or_an_expression(spark):
    def row(rid, **values):
        return {"_source_record_id": rid, "id": rid, "_batch_id": "b1", "_ingested_at": T0, "_row_hash": rid, **values}

    bronze = _bronze(spark, "reg", [
        row("1", street_no="12", street="High Street", unit="Flat 3", given_1="Anna", given_2="Maria", family="Nowak",
            ssn="850-30-5123", born_y="1985", born_m="3", born_d="5", town="Leeds", district=" "),
        row("2", street_no=None, street="Rue Haute", unit="  ", given_1="Jean", given_2=None, family="Roux",
            ssn=None, born_y=None, born_m=None, born_d=None, town=None, district=None),
    ], MULTI_COLUMNS)  # fmt: skip
    staged = {r.source_record_id: r for r in R.stage_source(bronze, MULTI).collect()}
    one, two = staged["1"], staged["2"]
    assert (one.address_line1, one.first_name, one.national_id, one.date_of_birth, one.city) == (
        "12 High Street Flat 3", "Anna Maria", "850305123", dt.date(1985, 3, 5), "Leeds")  # fmt: skip
    # blank and missing parts are skipped; nothing at all is null, never an empty string
    assert (two.address_line1, two.first_name, two.national_id, two.date_of_birth, two.city) == (
        "Rue Haute", "Jean", None, None, None)  # fmt: skip


def test_a_mapping_expression_that_does_not_fit_the_columns_names_source_and_attribute(spark):
    bronze = _bronze(spark, "reg", [], MULTI_COLUMNS)
    broken = MULTI.model_copy(update={"mapping": {**MULTI.mapping, "email": MappedSpec(expr="lower(e_mail)")}})
    with pytest.raises(SourceMappingError, match=r"bronze/reg \(source 'reg', email\): expression 'lower\(e_mail\)' does not work"):
        R.stage_source(bronze, broken)


def test_the_columns_an_expression_reads_are_checked_like_mapped_columns():
    from cdi.bronze.drift import missing_columns

    missing = missing_columns(MULTI, {"reg.csv": [c for c, _ in MULTI_COLUMNS if c not in ("ssn", "unit")]})
    assert [(col, why) for _, col, why in missing] == [("unit", "mapped to address_line1"), ("ssn", "mapped to national_id")]


def test_cross_reference_columns_become_the_record_keys_they_name(spark):
    billing = SourceConfig(
        name="billing", kind="customers", format="csv", path="/in/billing.csv", id_columns=["id"],
        references=[{"column": "crm_id", "source": "crm"}, {"column": ["shop_region", "shop_no"], "source": "shop"}],
        mapping={"last_name": "name"},
    )  # fmt: skip

    def row(rid, **values):
        return {"_source_record_id": rid, "id": rid, "_batch_id": "b1", "_ingested_at": T0, "_row_hash": rid, **values}

    columns = [(c, "string") for c in ("id", "name", "crm_id", "shop_region")] + [("shop_no", "int")]
    bronze = _bronze(spark, "billing", [
        row("1", name="Nowak", crm_id=" C7 ", shop_region="EU", shop_no=42),
        row("2", name="Roux", crm_id="  ", shop_region=None, shop_no=None),
        row("3", name="Kim", crm_id=None, shop_region="EU", shop_no=None),
    ], columns)  # fmt: skip
    staged = {r.source_record_id: r.reference_keys for r in R.stage_source(bronze, billing).collect()}
    # trimmed; a composite id joined by "|" as bronze joins one, and only whole; blanks name nothing
    assert staged == {"1": ["crm:C7", "shop:EU|42"], "2": None, "3": None}
