"""A whole staged record standardised at once: every attribute through its standardiser, the
display and match columns of ``silver/records``, and the quality flags."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdi.schema import RECORDS_COLUMNS, RECORDS_TYPES

from .codes import (
    deceased_unknown,
    gender_unknown,
    marital_status_unknown,
    standardise_deceased,
    standardise_gender,
    standardise_marital_status,
    standardise_national_id,
)
from .contacts import email_country_hint, email_match_key, email_user, standardise_email, standardise_phone
from .dates import dob_out_of_range, dod_out_of_range
from .money import currency_of_amount, parse_amount, standardise_currency
from .names import (
    TWO_SURNAME_COUNTRIES,
    split_full_name,
    standardise_honorific,
    standardise_name_suffix,
    strip_suffix,
    strip_title,
    with_given_name_canonical,
)
from .places import address_match_key, compact_postcode, postcode_match_key, standardise_postcode, with_country_code
from .regions import with_region
from .text import clean_text, display_case, fold, has_control_characters, nullif_empty

STAGED_ATTRIBUTES = (
    "honorific", "first_name", "middle_name", "last_name", "full_name", "gender", "email", "phone",
    "address_line1", "address_line2", "city", "postcode", "region", "country", "national_id",
    "marital_status", "income", "income_currency", "deceased",
)  # fmt: skip
"""Raw text columns :func:`standardise_records` expects (null where a source lacks them)."""

STAGED_COLUMNS = (
    ("record_key", "string"), ("source", "string"), ("source_record_id", "string"),
    *[(name, "string") for name in STAGED_ATTRIBUTES],
    ("date_of_birth", "date"), ("_raw_date_of_birth", "string"),
    ("date_of_death", "date"), ("_raw_date_of_death", "string"),
    ("updated_at", "timestamp"), ("_raw_updated_at", "string"),
    ("reference_keys", "array<string>"),
    ("_default_country", "string"), ("_phone_region", "string"),
    ("_batch_id", "string"), ("_row_hash", "string"), ("_ingested_at", "timestamp"),
)  # fmt: skip
"""The staged input of :func:`standardise_records`: raw text per attribute, dates already parsed
with each source's own formats (their raw text kept for the quality flags), the record keys its
cross-reference columns name, per-source defaults."""


QUALITY_FLAGS = (
    "name_missing", "dob_unparseable", "dob_out_of_range", "gender_unknown", "email_invalid",
    "phone_invalid", "postcode_invalid", "country_unknown", "marital_status_unknown",
    "income_unparseable", "currency_unknown", "updated_at_unparseable", "control_characters",
    "deceased_unknown", "date_of_death_unparseable", "date_of_death_out_of_range",
)  # fmt: skip


def _missing_staged(df: DataFrame) -> list[str]:
    return [name for name, _ in STAGED_COLUMNS if name not in df.columns]


def standardise_records(staged: DataFrame) -> DataFrame:
    """Canonical, standardised records (:data:`RECORDS_COLUMNS`) from staged raw text (:data:`STAGED_COLUMNS`).

    A few projections, each computing a value once from columns of the one before (so no
    expression is copied into another), and two broadcast joins (countries, nicknames); no action.
    """
    missing = _missing_staged(staged)
    if missing:
        raise ValueError(f"standardise_records: staged frame lacks column(s) {missing}; build it as records.stage_source does")
    typed = [F.col(name).cast(dtype).alias(name) for name, dtype in STAGED_COLUMNS]
    df = staged.select(*typed).select(
        *[name for name, _ in STAGED_COLUMNS if name not in STAGED_ATTRIBUTES and not name.startswith("_raw_")],
        *[clean_text(F.col(name)).alias(name) for name in STAGED_ATTRIBUTES],
        # NUL and other control characters are removed by clean_text; the record is flagged
        has_control_characters(F.concat_ws("", *[F.col(n) for n in STAGED_ATTRIBUTES])).alias("_f_control"),
        clean_text(F.col("_raw_date_of_birth")).alias("_raw_date_of_birth"),
        clean_text(F.col("_raw_date_of_death")).alias("_raw_date_of_death"),
        clean_text(F.col("_raw_updated_at")).alias("_raw_updated_at"),
    )
    df = with_country_code(df.withColumnRenamed("country", "_raw_country"), "_raw_country", "country")
    df = df.withColumn("_home", F.coalesce(F.col("country"), F.col("_default_country")))
    df = with_region(df, "region", "_home")
    # a national number is read in the record's country, else the phone mapping's or the source's
    # default region, else the country of the e-mail's domain
    phone_region = F.coalesce(
        F.col("country"), F.col("_phone_region"), F.col("_default_country"), email_country_hint(F.col("email"))
    )

    # 1. every attribute standardised once; names split into structs read by the next step
    col = F.col
    df = df.select(
        "*",
        strip_title(col("first_name")).alias("_first"),
        strip_suffix(col("last_name")).alias("_last"),
        split_full_name(col("full_name"), col("_home").isin(*TWO_SURNAME_COUNTRIES)).alias("_split"),
        standardise_gender(col("gender")).alias("_gender"),
        gender_unknown(col("gender")).alias("_f_gender_unknown"),
        standardise_email(col("email")).alias("_email"),
        standardise_phone(col("phone"), phone_region).alias("_phone"),
        standardise_postcode(col("postcode"), col("_home")).alias("_postcode"),
        standardise_national_id(col("national_id")).alias("_national_id"),
        standardise_marital_status(col("marital_status")).alias("_marital_status"),
        marital_status_unknown(col("marital_status")).alias("_f_marital_status_unknown"),
        standardise_deceased(col("deceased")).alias("_deceased_flag"),
        deceased_unknown(col("deceased")).alias("_f_deceased_unknown"),
        parse_amount(col("income")).alias("_income"),
        standardise_currency(col("income_currency")).alias("_currency"),
        currency_of_amount(col("income")).alias("_income_symbol"),
        address_match_key(col("address_line1"), col("address_line2")).alias("address_std"),
    )

    # 2. names from the parts a source gives, or from its full name when it gives neither first nor last
    split = col("_first.rest").isNull() & col("_last.rest").isNull()
    df = df.select(
        "*",
        F.coalesce(standardise_honorific(col("honorific")), standardise_honorific(col("_first.title")),
                   standardise_honorific(col("_split.title"))).alias("_honorific"),
        F.when(split, col("_split.first_name")).otherwise(display_case(nullif_empty(col("_first.rest")))).alias("_first_name"),
        F.when(split, col("_split.middle_name")).otherwise(display_case(col("middle_name"))).alias("_middle_name"),
        F.when(split, col("_split.last_name")).otherwise(display_case(nullif_empty(col("_last.rest")))).alias("_last_name"),
        F.coalesce(standardise_name_suffix(col("_last.suffix")), standardise_name_suffix(col("_split.suffix"))).alias("name_suffix"),
        F.when(~dob_out_of_range(col("date_of_birth")), col("date_of_birth")).alias("_dob"),
        F.when(~dod_out_of_range(col("date_of_death"), col("date_of_birth")), col("date_of_death")).alias("_dod"),
        display_case(col("city")).alias("_city"),
    )
    full = F.concat_ws(" ", "_first_name", "_middle_name", "_last_name")
    df = df.select(
        "*",
        F.nullif(full, F.lit("")).alias("_full_name"),
        fold(col("_first_name")).alias("first_name_std"),
        fold(col("_last_name")).alias("last_name_std"),
        fold(full).alias("full_name_std"),
        F.year("_dob").alias("dob_year"),
        email_match_key(col("_email")).alias("email_std"),
        email_user(col("_email")).alias("email_user"),
        postcode_match_key(col("_postcode")).alias("postcode_std"),
        fold(col("_city")).alias("city_std"),
    )

    # 3. nicknames (broadcast join on the standardised gender)
    df = with_given_name_canonical(df, gender="_gender")

    # 4. display columns and the quality flags, comparing each cleaned input with its result
    flags = {
        "name_missing": col("_first_name").isNull() & col("_last_name").isNull(),
        "dob_unparseable": col("_raw_date_of_birth").isNotNull() & col("date_of_birth").isNull(),
        "dob_out_of_range": col("date_of_birth").isNotNull() & col("_dob").isNull(),
        "gender_unknown": col("_f_gender_unknown"),
        "email_invalid": col("email").isNotNull() & col("_email").isNull(),
        "phone_invalid": col("phone").isNotNull() & col("_phone.e164").isNull(),
        "postcode_invalid": compact_postcode(col("postcode")).isNotNull() & col("_postcode").isNull(),
        "country_unknown": col("_raw_country").isNotNull() & col("country").isNull(),
        "marital_status_unknown": col("_f_marital_status_unknown"),
        "income_unparseable": col("income").isNotNull() & col("_income").isNull(),
        "currency_unknown": col("income_currency").isNotNull() & col("_currency").isNull(),
        "updated_at_unparseable": col("_raw_updated_at").isNotNull() & col("updated_at").isNull(),
        "control_characters": col("_f_control"),
        "deceased_unknown": col("_f_deceased_unknown"),
        "date_of_death_unparseable": col("_raw_date_of_death").isNotNull() & col("date_of_death").isNull(),
        "date_of_death_out_of_range": col("date_of_death").isNotNull() & col("_dod").isNull(),
    }
    quality = F.array_compact(F.array(*[F.when(F.coalesce(flags[name], F.lit(False)), F.lit(name)) for name in QUALITY_FLAGS]))
    display = {
        "honorific": col("_honorific"),
        "first_name": col("_first_name"),
        "middle_name": col("_middle_name"),
        "last_name": col("_last_name"),
        "full_name": col("_full_name"),
        "date_of_birth": col("_dob"),
        "gender": col("_gender"),
        "email": col("_email"),
        "phone": col("_phone.international"),
        "phone_std": col("_phone.e164"),
        "city": col("_city"),
        "postcode": col("_postcode"),
        "national_id": col("_national_id"),
        "marital_status": col("_marital_status"),
        "income": col("_income"),
        # a date of death says so even where the flag is missing or contradicts it
        "deceased": F.when(col("_dod").isNotNull(), F.lit(True)).otherwise(col("_deceased_flag")),
        "date_of_death": col("_dod"),
        "income_currency": F.coalesce(col("_currency"), col("_income_symbol")),
        "updated_at": F.coalesce(col("updated_at"), col("_ingested_at")),
        "quality_flags": quality,
    }
    return df.select(
        *[display.get(name, col(name)).cast(RECORDS_TYPES.get(name, "string")).alias(name) for name in RECORDS_COLUMNS]
    )
