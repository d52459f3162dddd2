"""Segments: named groups of customers defined by rules over ``gold/customer_360`` columns.

Configured segments (``segments:`` in the YAML, each a Spark SQL condition) are materialised as
membership rows in ``gold/segments`` (segment, customer_id, run_id); a customer may belong to
several segments. The demographic cross-tab (age band x gender x income band x region) is
generated on demand: one segment per non-empty cell, named after the cell.

A profile describes a segment for marketing: size, revenue and its share of all revenue, the RFM
spread among its buyers and how many members can be reached with consent per channel.

    >>> members = segment_membership(lake.read("gold/customer_360"), cfg.segments)  # doctest: +SKIP
    >>> segment_profiles(spark, lake).show()  # doctest: +SKIP
    >>> cells = crosstab_membership(lake.read("gold/customer_360"))  # doctest: +SKIP
    >>> profile_segments(cells, lake.read("gold/customer_360")).orderBy("segment").show()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import reduce

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi import schema
from cdi.config import SegmentConfig
from cdi.errors import ConfigError, SegmentRuleError

log = logging.getLogger(__name__)

SEGMENTS = schema.SEGMENTS
CUSTOMER_360 = schema.CUSTOMER_360
CROSSTAB_DIMENSIONS = ("age_band", "gender", "income_band", "region")
CHANNELS = ("email", "sms", "phone")
CELL_SEPARATOR = " | "

MEMBERSHIP_SCHEMA = schema.SEGMENTS_SCHEMA


def segment_members(c360: DataFrame, segment: SegmentConfig) -> DataFrame:
    """Customers matching one segment's rule: (segment, customer_id)."""
    try:
        matching = c360.where(F.expr(segment.where))
    except AnalysisException as exc:
        reason = str(exc).strip().splitlines()[0]
        raise SegmentRuleError(
            f"segment '{segment.name}': where {segment.where!r} is not a valid condition over "
            f"gold/customer_360 ({reason}). Columns: {', '.join(c360.columns)}"
        ) from None
    return matching.select(F.lit(segment.name).alias("segment"), F.col("customer_id").cast("string"))


def segment_membership(c360: DataFrame, segments: Sequence[SegmentConfig]) -> DataFrame:
    """Membership of every configured segment; every rule is checked before anything runs."""
    frames = [segment_members(c360, seg) for seg in segments]
    if not frames:
        return c360.sparkSession.createDataFrame([], MEMBERSHIP_SCHEMA)
    return reduce(DataFrame.unionByName, frames)


def write_segments(lake, membership: DataFrame, run_id: str):
    """Replace ``gold/segments`` with this run's membership."""
    return lake.write(SEGMENTS, membership.withColumn("run_id", F.lit(run_id)), mode="overwrite")


def _cell_value(column: str):
    return F.coalesce(F.col(column).cast("string"), F.lit("unknown"))


def crosstab_membership(c360: DataFrame, dimensions: Sequence[str] = CROSSTAB_DIMENSIONS) -> DataFrame:
    """One generated segment per cell of the cross-tab: (segment, customer_id, <dimensions>).

    The segment is named after its cell, e.g. ``25-34 | F | 40k-60k | Bavaria``; null values are
    ``unknown``.
    """
    missing = [d for d in dimensions if d not in c360.columns]
    if missing:
        raise ConfigError(f"cross-tab dimension(s) {missing} are not customer_360 columns ({', '.join(c360.columns)})")
    values = [_cell_value(d).alias(d) for d in dimensions]
    return c360.select(
        F.concat_ws(CELL_SEPARATOR, *[_cell_value(d) for d in dimensions]).alias("segment"),
        F.col("customer_id").cast("string"),
        *values,
    )


def profile_segments(membership: DataFrame, c360: DataFrame) -> DataFrame:
    """Per segment: size, share of customers, revenue and share of all revenue, buyers, average
    R/F/M scores and the quartiles of R+F+M among buyers, reachable (consented) members per channel.

    Shares are of the whole 360, so overlapping segments need not add up to 1.
    """
    totals = c360.agg(
        F.count(F.lit(1)).alias("__all_customers"), F.sum("revenue").alias("__all_revenue")
    )
    buyer = F.col("orders") > 0
    rfm_total = F.when(buyer, F.col("r_score") + F.col("f_score") + F.col("m_score"))
    members = membership.select("segment", "customer_id").join(c360, "customer_id", "inner")
    reach = [F.sum(F.col(f"reachable_{c}").cast("int")).alias(f"reachable_{c}") for c in CHANNELS]
    any_channel = reduce(lambda a, b: a | b, [F.col(f"reachable_{c}") for c in CHANNELS])
    profile = members.groupBy("segment").agg(
        F.count(F.lit(1)).alias("customers"),
        F.round(F.sum("revenue"), 2).alias("revenue"),
        F.sum(buyer.cast("int")).alias("buyers"),
        F.round(F.avg(F.when(buyer, F.col("r_score"))), 2).alias("avg_r_score"),
        F.round(F.avg(F.when(buyer, F.col("f_score"))), 2).alias("avg_f_score"),
        F.round(F.avg(F.when(buyer, F.col("m_score"))), 2).alias("avg_m_score"),
        F.percentile_approx(rfm_total, [0.25, 0.5, 0.75]).alias("__rfm_q"),
        *reach,
        F.sum(any_channel.cast("int")).alias("reachable_any"),
    )
    return (
        profile.crossJoin(totals)
        .withColumn("share_of_customers", F.round(F.col("customers") / F.col("__all_customers"), 4))
        .withColumn(
            "revenue_share",
            F.when(F.col("__all_revenue") > 0, F.round(F.col("revenue") / F.col("__all_revenue"), 4)),
        )
        .withColumn("rfm_p25", F.col("__rfm_q")[0])
        .withColumn("rfm_median", F.col("__rfm_q")[1])
        .withColumn("rfm_p75", F.col("__rfm_q")[2])
        .select(
            "segment", "customers", "share_of_customers", "revenue", "revenue_share", "buyers",
            "avg_r_score", "avg_f_score", "avg_m_score", "rfm_p25", "rfm_median", "rfm_p75",
            *[f"reachable_{c}" for c in CHANNELS], "reachable_any",
        )
    )


def segment_profiles(spark: SparkSession, lake) -> DataFrame:
    """Profiles of the segments in ``gold/segments`` against ``gold/customer_360``."""
    return profile_segments(lake.read(SEGMENTS), lake.read(CUSTOMER_360))


def consented_audience(
    c360: DataFrame, membership: DataFrame, segment: str, channel: str = "email", *, masked: bool = True
) -> DataFrame:
    """Members of ``segment`` who agreed to be contacted on ``channel`` and have its contact point:
    (customer_id, full_name, first_name, last_name, contact), the contact masked (see
    :func:`masked_contact`) unless ``masked`` is false: a file that leaves the lake carries
    contact points in clear only when someone asked for them."""
    if channel not in CHANNELS:
        raise ConfigError(f"unknown channel {channel!r}: use one of {', '.join(CHANNELS)}")
    contact = "email" if channel == "email" else "phone"
    shown = masked_contact(F.col(contact), channel) if masked else F.col(contact)
    ids = membership.where(F.col("segment") == segment).select("customer_id").distinct()
    return (
        c360.join(ids, "customer_id", "inner")
        .where(F.col(f"reachable_{channel}"))
        .select("customer_id", "full_name", "first_name", "last_name", shown.alias(contact))
    )


def masked_contact(contact: Column, channel: str) -> Column:
    """An e-mail as its first letter and domain (``j***@example.com``), a phone number as its
    first three and last two characters with stars between."""
    if channel == "email":
        return F.concat(F.substring(contact, 1, 1), F.lit("***"), F.regexp_extract(contact, r"(@.*)$", 1))
    shown = F.concat(F.substring(contact, 1, 3), F.repeat(F.lit("*"), F.length(contact) - 5), F.substring(contact, -2, 2))
    return F.when(F.length(contact) > 5, shown).otherwise(F.repeat(F.lit("*"), F.length(contact)))
