"""Standardisers on tiny DataFrames: names, dates, phones, e-mails, gender, countries, postcodes,
addresses, money. Each test runs its cases as one DataFrame (one Spark job); property tests draw
batches of arbitrary text with hypothesis."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from cdi.errors import LookupTableError
from cdi.silver import standardise as S
from cdi.silver.standardise import lookups
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

# each example is one Spark job over a batch of values: few examples, large batches
PROPERTY = settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# Latin with diacritics, Greek, Cyrillic, punctuation, odd whitespace and format characters
TRICKY_TEXT = st.text(
    alphabet=st.sampled_from(list("aZ09 .,-'’/@+()#ŁłŻżóÓßẞæøÆØñÑçÇüÜéÉ ΣσςΩЖжщЯ\t\u00a0\u200b\u2028ﬁİı€£$")),
    max_size=24,
)


def apply(spark, fn, values, *, schema="v string"):
    """[fn(row) for each row] computed by Spark in one job; single values become one-column rows."""
    rows = [v if isinstance(v, tuple) else (v,) for v in values]
    df = spark.createDataFrame(rows, schema)
    out = df.select(F.monotonically_increasing_id().alias("_i"), fn(*[F.col(c) for c in df.columns]).alias("out"))
    return [r["out"] for r in out.orderBy("_i").collect()]


# --------------------------------------------------------------------------- folding and text


def test_fold_transliterates_and_keeps_only_letters_digits_and_single_spaces(spark):
    cases = {
        "Łukasz": "lukasz",
        "  GÓMEZ-Pérez  ": "gomez perez",
        "O'Brien": "obrien",
        "O’Neill": "oneill",
        "Straße": "strasse",
        "Müller, Jürgen": "muller jurgen",
        "Ærøskøbing": "aeroskobing",
        "Жуков": "zhukov",
        "Małgorzata Żółć": "malgorzata zolc",
        "...": None,
        None: None,
    }
    assert apply(spark, S.fold, list(cases)) == list(cases.values())


def test_clean_text_trims_collapses_whitespace_and_nulls_placeholders(spark):
    cases = {
        "  Anna \t Maria\u00a0 ": "Anna Maria",
        "Zo\u200be": "Zoe",
        "": None,
        "   ": None,
        "NULL": None,
        "n/a": None,
        "-": None,
        "Nulla": "Nulla",
    }
    assert apply(spark, S.clean_text, list(cases)) == list(cases.values())


def test_display_case_titles_single_case_text_and_keeps_mixed_case(spark):
    cases = {
        "ŁUKASZ": "Łukasz",
        "o'brien-smith": "O'Brien-Smith",
        "GARCÍA LÓPEZ": "García López",
        "McDonald": "McDonald",
        "van Dijk": "van Dijk",
    }
    assert apply(spark, S.display_case, list(cases)) == list(cases.values())


@PROPERTY
@given(st.lists(TRICKY_TEXT, min_size=1, max_size=60))
def test_spark_fold_agrees_with_python_fold_and_is_idempotent(spark, texts):
    folded = apply(spark, S.fold, texts)
    assert folded == [S.fold_text(t) for t in texts]
    assert apply(spark, S.fold, folded) == folded


def test_names_in_any_script_fold_to_comparable_latin_text_in_spark_and_python(spark):
    cases = {
        "محمد عبد الله": "mhmd bd llh",  # Arabic
        "דוד כהן": "dvd khhn",  # Hebrew
        "Владимир Путин": "vladimir putin",  # Cyrillic
        "Γιώργος Παπαδόπουλος": "giorgos papadopoulos",  # Greek
        "张伟": "zhang wei",  # Chinese: one syllable per character
        "さくら": "sakura",  # Japanese kana
        "김민준": "gimminjun",  # Korean
        "राम": "raam",  # Devanagari
        "Zhang Wei": "zhang wei",  # the Latin spelling folds alike
        "Anna\u200dMaria": "annamaria",  # a zero-width joiner is no word break
    }
    assert apply(spark, S.fold, list(cases)) == list(cases.values())
    assert [S.fold_text(t) for t in cases] == list(cases.values())


def test_clean_text_removes_control_characters_and_keeps_zero_width_joiners(spark):
    cases = {
        "Ann\x00a": "Anna",
        "Bob\x07\x1b": "Bob",
        "Jo\x85hn": "Jo hn",  # NEL is a line break: whitespace, not deleted
        "\u0639\u0644\u06cc\u200c\u0631\u0636\u0627": "\u0639\u0644\u06cc\u200c\u0631\u0636\u0627",  # Persian ZWNJ
        "\U0001F469\u200d\U0001F4BB Kim": "\U0001F469\u200d\U0001F4BB Kim",  # an emoji ZWJ sequence stays one grapheme
        "Zo\u200be\u200e": "Zoe",  # zero-width space, left-to-right mark
    }
    assert apply(spark, S.clean_text, list(cases)) == list(cases.values())
    assert apply(spark, S.has_control_characters, ["Ann\x00a", "Anna", None, "a\tb"]) == [True, False, None, False]


# --------------------------------------------------------------------------- names


def _split(spark, names, two_surnames=False):
    out = apply(spark, lambda c: S.split_full_name(c, F.lit(two_surnames)), names)
    titles = apply(spark, S.standardise_honorific, [r.title for r in out])
    suffixes = apply(spark, S.standardise_name_suffix, [r.suffix for r in out])
    return [(t, r.first_name, r.middle_name, r.last_name, s) for t, r, s in zip(titles, out, suffixes, strict=True)]


def test_full_names_split_in_both_orders_with_titles_and_suffixes(spark):
    cases = {
        "Anna Maria Nowak": (None, "Anna", "Maria", "Nowak", None),
        "Nowak, Anna Maria": (None, "Anna", "Maria", "Nowak", None),
        "Dr. Anna Nowak": ("Dr", "Anna", None, "Nowak", None),
        "Pani Katarzyna Wójcik": ("Pani", "Katarzyna", None, "Wójcik", None),
        "Herr Hans-Peter Müller": ("Herr", "Hans-Peter", None, "Müller", None),
        "Sra. María de la Cruz": ("Sra", "María", None, "de la Cruz", None),
        "Prof. Dr. hab. Jan Kowalski": ("Prof Dr hab", "Jan", None, "Kowalski", None),
        "John Smith, Jr.": (None, "John", None, "Smith", "Jr"),
        "Smith Jr., John": (None, "John", None, "Smith", "Jr"),
        "Smith, Dr. John": ("Dr", "John", None, "Smith", None),
        "MR JOHN O'BRIEN III": ("Mr", "John", None, "O'Brien", "III"),
        "Ursula von der Leyen": (None, "Ursula", None, "von der Leyen", None),
        "Madonna": (None, None, None, "Madonna", None),
        "Drew Barrymore": (None, "Drew", None, "Barrymore", None),
        None: (None, None, None, None, None),
    }
    assert _split(spark, list(cases)) == list(cases.values())


def test_spanish_names_keep_both_surnames_when_asked(spark):
    names = ["José Luis García López", "Juan García", "García López, José"]
    assert _split(spark, names, two_surnames=True) == [
        (None, "José", "Luis", "García López", None),
        (None, "Juan", None, "García", None),
        (None, "José", None, "García López", None),
    ]
    assert _split(spark, names[:1])[0][1:4] == ("José", "Luis García", "López")


def test_honorific_and_suffix_columns_are_canonical(spark):
    assert apply(spark, S.standardise_honorific, ["dr.", "SRA", "Frau", "mrs", "Bob", None]) == [
        "Dr", "Sra", "Frau", "Mrs", None, None,
    ]  # fmt: skip
    assert apply(spark, S.standardise_name_suffix, ["jr.", ", iii", "Senior"]) == ["Jr", "III", "Sr"]


def test_nicknames_map_to_canonical_given_names_by_broadcast_join(spark):
    rows = [
        ("bill", None), ("billy", "M"), ("liz", "F"), ("kasia", "F"), ("gosia", None), ("olek", "M"),
        ("pepe", "M"), ("paco", None), ("hans", "M"), ("wolf", None), ("bob", None), ("beth", None),
        ("chema", "M"), ("sam", "F"), ("sam", "M"), ("sam", None), ("william", "M"), ("anna maria", "F"), (None, None),
    ]  # fmt: skip
    df = spark.createDataFrame(rows, "first_name_std string, gender string").withColumn("_i", F.monotonically_increasing_id())
    out = S.with_given_name_canonical(df).orderBy("_i").collect()
    assert [r.given_name_canonical for r in out] == [
        "william", "william", "elizabeth", "katarzyna", "malgorzata", "aleksander",
        "jose", "francisco", "johann", "wolfgang", "robert", "elizabeth",
        "jose", "samantha", "samuel", "sam", "william", "anna", None,
    ]  # fmt: skip
    assert "Broadcast" in df.transform(S.with_given_name_canonical)._jdf.queryExecution().executedPlan().toString()


def test_nickname_table_is_large_multilingual_and_consistent():
    rows = S.load_table("nicknames.csv")
    assert len(rows) >= 150
    assert {"en", "pl", "es", "de"} <= {r["language"] for r in rows}
    keys = S.nickname_rows()
    assert len({k for k, *_ in keys}) == len(keys)


# --------------------------------------------------------------------------- dates


def test_dates_parse_from_declared_formats_and_impossible_dates_are_null(spark):
    formats = ["dd.MM.yyyy", "dd/MM/yyyy", "d MMM yyyy"]
    cases = {
        "05.03.1985": dt.date(1985, 3, 5),
        "5.3.1985": None,
        "24/12/1970": dt.date(1970, 12, 24),
        "3 Feb 2001": dt.date(2001, 2, 3),
        "1990-07-01": dt.date(1990, 7, 1),
        "1990-07-01T10:00:00Z": dt.date(1990, 7, 1),
        "31.02.2020": None,
        "29.02.2020": dt.date(2020, 2, 29),
        "banana": None,
        "": None,
        None: None,
    }
    assert apply(spark, lambda c: S.parse_date(c, formats), list(cases)) == list(cases.values())


def test_two_digit_years_in_the_future_belong_to_the_previous_century(spark):
    out = apply(spark, lambda c: S.parse_date(c, ["dd.MM.yy"]), ["01.02.85", "01.02.05"])
    assert out == [dt.date(1985, 2, 1), dt.date(2005, 2, 1)]


def test_timestamps_parse_from_formats_iso_and_epochs(spark):
    out = apply(spark, lambda c: S.parse_timestamp(c, ["dd.MM.yyyy HH:mm"]),
                ["01.03.2024 10:30", "2024-03-01T10:30:00Z", "1709289000", "1709289000000", "yesterday"])
    stamp = dt.datetime(2024, 3, 1, 10, 30)
    assert out == [stamp, stamp, stamp, stamp, None]


# --------------------------------------------------------------------------- coded values


def test_gender_codes_in_many_languages(spark):
    cases = {
        "M": "M", "f": "F", "Male": "M", "FEMALE": "F", "k": "F", "Kobieta": "F", "mężczyzna": "M",
        "hombre": "M", "Mujer": "F", "männlich": "M", "weiblich": "F", "W": "F", "x": "X",
        "divers": "X", "unknown": None, "zebra": None, None: None,
    }  # fmt: skip
    assert apply(spark, S.standardise_gender, list(cases)) == list(cases.values())
    assert apply(spark, S.gender_unknown, ["unknown", "zebra", None, "k"]) == [False, True, False, False]


def test_marital_status_and_national_id(spark):
    assert apply(spark, S.standardise_marital_status, ["Żonaty", "soltera", "verwitwet", "S", "complicated"]) == [
        "married", "single", "widowed", "single", None,
    ]  # fmt: skip
    assert apply(spark, S.marital_status_unknown, ["complicated", "u"]) == [True, False]
    assert apply(spark, S.standardise_national_id, ["ab 12 34 56 c", "850305-12345", " - "]) == [
        "AB123456C", "85030512345", None,
    ]  # fmt: skip


def test_countries_from_names_codes_and_local_names(spark):
    cases = {
        "Polska": "PL", "POLAND": "PL", "pl": "PL", "POL": "PL", "Deutschland": "DE", "Germany": "DE",
        "España": "ES", "Espana": "ES", "United Kingdom": "GB", "UK": "GB", "U.K.": "GB", "England": "GB",
        "USA": "US", "United States of America": "US", "Österreich": "AT", "Atlantis": None, None: None,
    }  # fmt: skip
    df = spark.createDataFrame([(k,) for k in cases], "raw string").withColumn("_i", F.monotonically_increasing_id())
    out = S.with_country_code(df, "raw").orderBy("_i").collect()
    assert [r.country for r in out] == list(cases.values())



def test_regions_become_iso_3166_2_subdivisions_of_the_records_country(spark):
    cases = [
        ("NY", "US", "New York", "US-NY"), ("new york", "US", "New York", "US-NY"), ("US-NY", "US", "New York", "US-NY"),
        ("mazowieckie", "PL", "Mazowieckie", "PL-14"), ("Masowien", "PL", "Mazowieckie", "PL-14"),
        ("PL-14", "PL", "Mazowieckie", "PL-14"), ("Bavaria", "DE", "Bayern", "DE-BY"), ("BAYERN", "DE", "Bayern", "DE-BY"),
        ("Ontario", "CA", "Ontario", "CA-ON"), ("Región de Murcia", "ES", "Murcia, Región de", "ES-MC"),
        ("Cataluña", "ES", "Catalunya", "ES-CT"), ("Cymru", "GB", "Wales", "GB-WLS"),  # iso-codes' bracketed names
        # no subdivision of the country by that name: kept as written, cleaned, without a code
        ("Greater London", "GB", "Greater London", None), ("Bayern", "PL", "Bayern", None),
        ("  NY ", None, "NY", None), (None, "US", None, None),
    ]  # fmt: skip
    df = spark.createDataFrame([(r, c) for r, c, _, _ in cases], "region string, country string")
    out = S.with_region(df.withColumn("_i", F.monotonically_increasing_id()), "region", "country", code="code")
    assert [(r.region, r.code) for r in out.orderBy("_i").collect()] == [(n, c) for _, _, n, c in cases]
    assert out.columns == ["region", "country", "_i", "code"]

# --------------------------------------------------------------------------- e-mail and phone


def test_emails_normalise_and_match_keys_drop_gmail_dots_and_tags(spark):
    raw = ["  John.Doe+News@GMail.com ", "j.doe@googlemail.com", "ANNA+x@wp.pl", "mailto:x@y.de", "not an email", "a@b", None]
    emails = apply(spark, S.standardise_email, raw)
    assert emails == ["john.doe+news@gmail.com", "j.doe@googlemail.com", "anna+x@wp.pl", "x@y.de", None, None, None]
    assert apply(spark, S.email_match_key, emails) == ["johndoe@gmail.com", "jdoe@gmail.com", "anna@wp.pl", "x@y.de", None, None, None]
    assert apply(spark, S.email_user, emails[:3]) == ["johndoe", "jdoe", "anna"]
    assert apply(spark, S.email_invalid, raw) == [False, False, False, False, True, True, False]


def test_phones_become_e164_with_the_region_as_home_country(spark):
    rows = [
        ("601 234 567", "PL"), ("+48 601-234-567", None), ("0048601234567", "PL"), ("020 7946 0958", "GB"),
        ("(212) 555-0100", "US"), ("+1 212 555 0100", "DE"), ("030 123456", "DE"), ("612 345 678", "ES"),
        ("12", "PL"), ("call me", "GB"), ("601 234 567", None), (None, "PL"),
    ]  # fmt: skip
    out = apply(spark, S.standardise_phone, rows, schema="raw string, region string")
    assert [r.e164 for r in out] == [
        "+48601234567", "+48601234567", "+48601234567", "+442079460958", "+12125550100", "+12125550100",
        "+4930123456", "+34612345678", None, None, None, None,
    ]  # fmt: skip
    assert out[0].international == "+48 601 234 567"


def test_email_country_domain_hints_a_phone_region_but_generic_domains_do_not(spark):
    assert apply(spark, S.email_country_hint, ["a@web.de", "b@bt.co.uk", "c@wp.pl", "d@gmail.com", "e@start.io", None]) == [
        "DE", "GB", "PL", None, None, None,
    ]  # fmt: skip


def test_format_phone_never_raises_on_garbage():
    for raw in ["", "+", "++48", "x" * 500, "+0000", "\x00", "+48 601 234 567 ext. 12"]:
        e164, _ = S.format_phone(raw, "PL")
        assert e164 is None or E164.match(e164)


@PROPERTY
@given(st.lists(st.tuples(st.text(alphabet="0123456789+-() .x", max_size=18), st.sampled_from(["PL", "GB", "US", "DE", "ES", None])),
                min_size=1, max_size=40))
def test_standardised_phones_are_e164_or_null_and_stable(spark, rows):
    out = apply(spark, S.standardise_phone, rows, schema="raw string, region string")
    assert all(r.e164 is None or E164.match(r.e164) for r in out)
    again = apply(spark, S.standardise_phone, [(r.e164, None) for r in out], schema="raw string, region string")
    assert [r.e164 for r in again] == [r.e164 for r in out]


# --------------------------------------------------------------------------- places


def test_postcodes_laid_out_per_country_and_invalid_ones_null(spark):
    rows = [
        ("sw1a1aa", "GB"), (" SW1A  1AA ", "GB"), ("ec1a-1bb", "GB"), ("00950", "PL"), ("00-950", "PL"),
        ("950", "PL"), ("8001", "ES"), ("10115", "DE"), ("123456", "DE"), ("1234ab", "NL"),
        ("021341234", "US"), ("ABC", "GB"), ("k1a0b1", "CA"), ("x-123", None), ("75008", "XX"), (None, "GB"),
    ]  # fmt: skip
    out = apply(spark, S.standardise_postcode, rows, schema="v string, country string")
    assert out == [
        "SW1A 1AA", "SW1A 1AA", "EC1A 1BB", "00-950", "00-950", "00-950", "08001", "10115", None, "1234 AB",
        "02134-1234", None, "K1A 0B1", "X-123", "75008", None,
    ]  # fmt: skip
    assert apply(spark, S.postcode_match_key, ["SW1A 1AA", "00-950", None]) == ["SW1A1AA", "00950", None]
    assert apply(spark, S.postcode_invalid, rows[8:12], schema="v string, country string") == [True, False, False, True]


def test_address_match_key_canonicalises_street_types_in_four_languages(spark):
    rows = [
        ("12 Baker St", None), ("12 BAKER STREET", None), ("4 Elm Rd.", "Apt 5"), ("ul. Długa 5/3", None),
        ("Ulica Długa 5/3", None), ("Al. Jerozolimskie 10", None), ("C/ Mayor 5", None), ("Calle Mayor 5", None),
        ("Avda. de América 4", None), ("Hauptstr. 5", None), ("Hauptstraße 5", None), ("Karl-Marx-Str. 1", None),
        (None, None),
    ]  # fmt: skip
    out = apply(spark, S.address_match_key, rows, schema="a string, b string")
    assert out == [
        "12 baker street", "12 baker street", "4 elm road apartment 5", "ulica dluga 5 3", "ulica dluga 5 3",
        "aleja jerozolimskie 10", "calle mayor 5", "calle mayor 5", "avenue de america 4", "hauptstrasse 5",
        "hauptstrasse 5", "karl marx strasse 1", None,
    ]  # fmt: skip


# --------------------------------------------------------------------------- money


def test_amounts_parse_in_english_and_continental_formats(spark):
    cases = {
        "1,234.56": 1234.56, "1.234,56": 1234.56, "€1.234,56": 1234.56, "72.000,00 zł": 72000.0,
        "52,000": 52000.0, "52.000": 52000.0, "1 234,5": 1234.5, "1'234.50": 1234.5, "12,50": 12.5,
        "£34,000": 34000.0, "52k": 52000.0, "(100)": -100.0, "-100": -100.0, "1.0E7": 10000000.0,
        "52000.0": 52000.0, "1.2.3,4,5": None, "about 30k a year": None, "garbage": None, None: None,
    }  # fmt: skip
    assert apply(spark, S.parse_amount, list(cases)) == list(cases.values())


def test_currencies_from_codes_symbols_and_amounts(spark):
    assert apply(spark, S.standardise_currency, ["eur", "zł", "£", "US$", "PLN", "monopoly money", None]) == [
        "EUR", "PLN", "GBP", "USD", "PLN", None, None,
    ]  # fmt: skip
    assert apply(spark, S.currency_of_amount, ["€1.234,56", "52 000 zł", "USD 10", "52k", "1000"]) == [
        "EUR", "PLN", "USD", None, None,
    ]  # fmt: skip


# --------------------------------------------------------------------------- whole records


def _staged(spark, rows: list[dict]):
    """Staged rows: every STAGED_COLUMNS column, null unless given."""
    names = [name for name, _ in S.STAGED_COLUMNS]
    schema = ", ".join(f"{name} {dtype}" for name, dtype in S.STAGED_COLUMNS)
    data = [tuple(row.get(n) for n in names) for row in rows]
    return spark.createDataFrame(data, schema)


def test_standardise_records_nulls_bad_values_flags_them_and_keeps_every_row(spark):
    base = {"source": "crm", "_ingested_at": dt.datetime(2024, 1, 1), "_default_country": "PL"}
    rows = [
        {**base, "record_key": "crm:1", "source_record_id": "1", "first_name": "ŁUKASZ", "last_name": "kowalski",
         "gender": "mężczyzna", "email": "Lukasz.K@Gmail.com", "phone": "601 234 567", "postcode": "00950",
         "country": "Polska", "city": "KRAKÓW", "address_line1": "ul. Długa 5", "income": "72.000,00 zł",
         "marital_status": "żonaty", "date_of_birth": dt.date(1985, 3, 5), "_raw_date_of_birth": "05.03.1985"},
        {**base, "record_key": "crm:2", "source_record_id": "2", "full_name": "Dr. Bill Smith Jr.", "gender": "zebra",
         "email": "nope", "phone": "12", "postcode": "ABC", "country": "Atlantis", "income": "lots",
         "income_currency": "shells", "marital_status": "complicated", "_raw_date_of_birth": "31.02.1985",
         "_raw_updated_at": "someday"},
        {**base, "record_key": "crm:3", "source_record_id": "3", "date_of_birth": dt.date(1850, 1, 1),
         "_raw_date_of_birth": "1850-01-01"},
    ]
    out = {r.record_key: r for r in S.standardise_records(_staged(spark, rows)).collect()}
    assert len(out) == 3
    good, bad, old = out["crm:1"], out["crm:2"], out["crm:3"]
    assert (good.first_name, good.last_name, good.full_name, good.first_name_std) == ("Łukasz", "Kowalski", "Łukasz Kowalski", "lukasz")
    assert (good.gender, good.email, good.email_std, good.phone, good.phone_std) == (
        "M", "lukasz.k@gmail.com", "lukaszk@gmail.com", "+48 601 234 567", "+48601234567",
    )
    assert (good.postcode, good.postcode_std, good.country, good.city, good.city_std) == ("00-950", "00950", "PL", "Kraków", "krakow")
    assert (good.income, good.income_currency, good.marital_status, good.dob_year) == (72000.0, "PLN", "married", 1985)
    assert (good.address_std, good.quality_flags, good.updated_at) == ("ulica dluga 5", [], dt.datetime(2024, 1, 1))
    assert (bad.honorific, bad.first_name, bad.last_name, bad.name_suffix, bad.given_name_canonical) == ("Dr", "Bill", "Smith", "Jr", "william")
    assert all(getattr(bad, c) is None for c in ("gender", "email", "phone", "postcode", "country", "income", "marital_status", "date_of_birth"))
    assert bad.quality_flags == [
        "dob_unparseable", "gender_unknown", "email_invalid", "phone_invalid", "postcode_invalid",
        "country_unknown", "marital_status_unknown", "income_unparseable", "currency_unknown",
        "updated_at_unparseable",
    ]  # fmt: skip  (postcode: the unknown country falls back to the source's PL rule)
    assert (old.date_of_birth, old.quality_flags) == (None, ["name_missing", "dob_out_of_range"])


def test_standardise_records_reads_deceased_flags_and_dates_of_death_in_many_forms(spark):
    base = {"source": "crm", "_ingested_at": dt.datetime(2024, 1, 1), "date_of_birth": dt.date(1940, 5, 1)}
    rows = [
        {**base, "record_key": "crm:1", "source_record_id": "1", "deceased": "Verstorben"},
        {**base, "record_key": "crm:2", "source_record_id": "2", "deceased": "N"},
        # a date of death says so even where the flag says alive
        {**base, "record_key": "crm:3", "source_record_id": "3", "deceased": "no", "date_of_death": dt.date(2020, 2, 3),
         "_raw_date_of_death": "03/02/2020"},
        {**base, "record_key": "crm:4", "source_record_id": "4", "deceased": "perhaps", "_raw_date_of_death": "31.02.2020"},
        {**base, "record_key": "crm:5", "source_record_id": "5", "date_of_death": dt.date(1939, 1, 1),
         "_raw_date_of_death": "1939-01-01"},
        {**base, "record_key": "crm:6", "source_record_id": "6", "deceased": "unknown"},
    ]
    out = {r.record_key: r for r in S.standardise_records(_staged(spark, rows)).collect()}
    got = {k: (r.deceased, r.date_of_death, [f for f in r.quality_flags if f != "name_missing"]) for k, r in out.items()}
    assert got == {
        "crm:1": (True, None, []),
        "crm:2": (False, None, []),
        "crm:3": (True, dt.date(2020, 2, 3), []),
        "crm:4": (None, None, ["deceased_unknown", "date_of_death_unparseable"]),
        "crm:5": (None, None, ["date_of_death_out_of_range"]),  # before the birth date
        "crm:6": (None, None, []),  # explicitly unknown
    }


def test_standardise_records_gives_names_in_other_scripts_a_match_form_and_flags_control_characters(spark):
    base = {"source": "crm", "_ingested_at": dt.datetime(2024, 1, 1)}
    rows = [
        {**base, "record_key": "crm:1", "source_record_id": "1", "first_name": "محمد", "last_name": "כהן"},
        {**base, "record_key": "crm:2", "source_record_id": "2", "full_name": "Anna\x00 Nowak", "city": "Kra\x1bków"},
    ]
    out = {r.record_key: r for r in S.standardise_records(_staged(spark, rows)).collect()}
    arabic, nul = out["crm:1"], out["crm:2"]
    assert (arabic.first_name, arabic.first_name_std, arabic.last_name_std, arabic.full_name_std) == ("محمد", "mhmd", "khhn", "mhmd khhn")
    assert (nul.first_name, nul.last_name, nul.city, nul.city_std) == ("Anna", "Nowak", "Kraków", "krakow")
    assert (arabic.quality_flags, nul.quality_flags) == ([], ["control_characters"])


@PROPERTY
@given(st.lists(st.tuples(*[TRICKY_TEXT] * 6), min_size=1, max_size=25))
def test_standardise_records_never_raises_and_never_drops_rows_on_arbitrary_text(spark, texts):
    attrs = ("full_name", "gender", "email", "phone", "postcode", "income")
    rows = [
        {"record_key": f"s:{i}", "source": "s", "source_record_id": str(i), "_default_country": "GB",
         **dict(zip(attrs, values)), "country": values[0], "_raw_date_of_birth": values[1]}
        for i, values in enumerate(texts)
    ]  # fmt: skip
    out = S.standardise_records(_staged(spark, rows)).collect()
    assert sorted(r.record_key for r in out) == sorted(r["record_key"] for r in rows)
    assert all(r.phone_std is None or E164.match(r.phone_std) for r in out)
    assert all(set(r.quality_flags) <= set(S.QUALITY_FLAGS) for r in out)


def test_idempotent_standardisers_give_the_same_value_twice(spark):
    emails = apply(spark, S.standardise_email, ["  A.B+c@GMAIL.com", "x@y.de"])
    assert apply(spark, S.standardise_email, emails) == emails
    names = apply(spark, lambda c: S.display_case(S.clean_text(c)), [" ŁUKASZ  o'brien ", "McDonald"])
    assert apply(spark, lambda c: S.display_case(S.clean_text(c)), names) == names
    rows = [("sw1a1aa", "GB"), ("00950", "PL"), ("8001", "ES")]
    once = apply(spark, S.standardise_postcode, rows, schema="v string, country string")
    twice = apply(spark, S.standardise_postcode, [(p, c) for p, (_, c) in zip(once, rows)], schema="v string, country string")
    assert once == twice


def test_broken_lookup_table_is_reported_with_file_and_row(monkeypatch):
    monkeypatch.setattr(lookups, "load_table", lambda name: ({"code": "m", "gender": "M"}, {"code": "M.", "gender": "F"}))
    lookups.keyed.cache_clear()
    try:
        with pytest.raises(LookupTableError, match=r"gender_codes.csv: row 2: code 'M.' \(folded 'm'\)"):
            lookups.keyed("gender_codes.csv", "code", "gender")
    finally:
        lookups.keyed.cache_clear()
