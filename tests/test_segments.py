"""Segment membership follows the configured rules, profiles add up to hand-computed values, the
cross-tab puts every customer in exactly one cell, and a bad rule names the segment."""

from __future__ import annotations

from pathlib import Path

import pytest
from cdi.config import SegmentConfig
from cdi.gold.segments import (
    SegmentRuleError,
    consented_audience,
    crosstab_membership,
    profile_segments,
    segment_membership,
    segment_profiles,
)
from chispa import assert_df_equality
from customer_360_fixtures import EXPECTED_SEGMENTS, RUN_ID, shared_lake
from pyspark.sql import functions as F


@pytest.fixture()
def built(spark, tmp_path_factory):
    return shared_lake(spark, tmp_path_factory)


def test_gold_segments_holds_the_members_of_each_configured_rule(built):
    rows = built["lake"].read("gold/segments").collect()
    got: dict[str, list[str]] = {name: [] for name in EXPECTED_SEGMENTS}
    for r in rows:
        got[r["segment"]].append(r["customer_id"])
    assert {k: sorted(v) for k, v in got.items()} == EXPECTED_SEGMENTS
    assert {r["run_id"] for r in rows} == {RUN_ID}


def test_a_customer_can_belong_to_several_segments(spark, built):
    c360 = built["lake"].read("gold/customer_360")
    rules = [SegmentConfig(name="buyers", where="orders > 0"), SegmentConfig(name="eu", where="country IN ('PL', 'DE')")]
    expected = spark.createDataFrame(
        [("buyers", "C1"), ("buyers", "C2"), ("buyers", "C3"), ("eu", "C1"), ("eu", "C3")],
        "segment string, customer_id string",
    )
    assert_df_equality(segment_membership(c360, rules), expected, ignore_row_order=True, ignore_nullable=True)


def unchecked(name: str, where: str) -> SegmentConfig:
    """A rule as a library caller may build it, past the config's own checks."""
    return SegmentConfig.model_construct(name=name, description="", where=where)


def test_a_rule_that_spark_cannot_analyse_names_the_segment(built):
    """The config rejects what it can see without Spark; Spark's analysis still stands behind it
    (types, unknown functions, rules built past validation)."""
    c360 = built["lake"].read("gold/customer_360")
    with pytest.raises(SegmentRuleError, match=r"segment 'rich': where 'wealth > 5' is not a valid condition"):
        segment_membership(c360, [SegmentConfig(name="ok", where="orders > 0"), unchecked("rich", "wealth > 5")])
    with pytest.raises(SegmentRuleError, match="segment 'odd'"):
        segment_membership(c360, [SegmentConfig(name="odd", where="no_such_function(orders) > 0")])


@pytest.mark.parametrize(
    "where, message",
    [
        ("ordrs > 0 AND gendr = 'F'", "'gendr' (did you mean 'gender'?), 'ordrs' (did you mean 'orders'?)"),
        ("orders >", "does not parse as Spark SQL at column 8 (near '>')"),
        ("sum(revenue) > 1000", "holds an aggregate (SUM(revenue))"),
        ("revenue > (SELECT max(revenue) FROM gold)", "holds a subquery"),
        ("orders > 0; DROP TABLE gold", "must be one condition, found 2 statement(s)"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_a_config_error_naming_key_and_fault_before_spark_starts(tmp_path, monkeypatch, capsys, where, message):
    from cdi.cli import main
    from cdi.config import load_config
    from cdi.errors import ConfigError

    monkeypatch.setattr("cdi.pipeline.run", lambda *a, **k: pytest.fail("reached the pipeline"))
    conf = tmp_path / "env.yaml"
    good = "  - {name: buyers, where: \"orders > 0 AND exists(channels, c -> c = 'web')\"}"
    conf.write_text(f"lake_root: {tmp_path}\nsegments:\n{good}\n  - name: bad\n    where: \"{where}\"\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(conf)
    text = str(err.value)
    assert "segments[1].where" in text and message in text, text
    assert "segments[0]" not in text, text
    assert main(["gold", "--conf", str(conf)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "segments[1].where" in last and message in last, last


def test_profile_has_size_revenue_share_rfm_spread_and_reach(spark, built):
    profiles = {r["segment"]: r.asDict() for r in segment_profiles(spark, built["lake"]).collect()}
    assert set(profiles) == {"women", "gb_buyers", "mid_income"}  # 'nobody' has no members
    mid = profiles["mid_income"]  # C1 (rfm 2+3+3 = 8) and C2 (1+2+2 = 5)
    assert (mid["customers"], mid["buyers"], mid["share_of_customers"]) == (2, 2, 0.5)
    assert mid["revenue"] == pytest.approx(2106.4)
    assert mid["revenue_share"] == pytest.approx(round(2106.4 / 2118.4, 4))
    assert (mid["avg_r_score"], mid["avg_f_score"], mid["avg_m_score"]) == (1.5, 2.5, 2.5)
    assert (mid["rfm_p25"], mid["rfm_median"], mid["rfm_p75"]) == (5, 5, 8)
    # C2 consented to e-mail; C1 to phone (and has one); C2 has no phone for its SMS consent
    assert (mid["reachable_email"], mid["reachable_sms"], mid["reachable_phone"], mid["reachable_any"]) == (1, 0, 1, 2)
    women = profiles["women"]
    assert women["revenue_share"] == pytest.approx(round(1606.4 / 2118.4, 4))


def test_crosstab_puts_every_customer_in_one_named_cell(built):
    c360 = built["lake"].read("gold/customer_360")
    cells = {r["customer_id"]: r["segment"] for r in crosstab_membership(c360).collect()}
    assert cells == {
        "C1": "35-44 | F | 40k-60k | Mazowieckie",
        "C2": "25-34 | M | 40k-60k | England",
        "C3": "unknown | X | unknown | Bayern",
        "C4": "65+ | M | 20k-40k | England",
    }
    by_country = {r["segment"]: r["customers"] for r in profile_segments(crosstab_membership(c360, ["country"]), c360).collect()}
    assert by_country == {"PL": 1, "GB": 2, "DE": 1}


def test_consented_audience_needs_consent_and_a_contact_point(built):
    lake = built["lake"]
    c360, members = lake.read("gold/customer_360"), lake.read("gold/segments")
    by_channel = {
        ch: sorted(r["customer_id"] for r in consented_audience(c360, members, "mid_income", ch).collect())
        for ch in ("email", "sms", "phone")
    }
    assert by_channel == {"email": ["C2"], "sms": [], "phone": ["C1"]}
    with pytest.raises(ValueError, match="unknown channel 'fax'"):
        consented_audience(c360, members, "mid_income", "fax")


def test_shipped_segment_rules_are_valid_over_the_customer_360(built):
    import yaml

    conf = Path(__file__).resolve().parents[1] / "conf" / "analytics.yaml"
    rules = [SegmentConfig(**s) for s in yaml.safe_load(conf.read_text(encoding="utf-8"))["segments"]]
    membership = segment_membership(built["lake"].read("gold/customer_360"), rules)  # analysis checks every rule
    never = membership.where(F.col("segment") == "never_bought").select("customer_id").collect()
    assert [r["customer_id"] for r in never] == ["C4"]


def test_a_bad_rule_stops_the_run_before_anything_is_written(spark, built):
    from cdi.gold.customer_360 import run_customer_360

    cfg, lake = built["cfg"], built["lake"]
    bad = cfg.model_copy(update={"segments": [unchecked("typo", "ordrs > 0")]})
    before = {t: lake.version(t) for t in ("gold/customer_360", "gold/segments", "gold/unmatched_facts")}
    with pytest.raises(SegmentRuleError, match="segment 'typo'"):
        run_customer_360(lake, bad.customer_360, bad.fact_sources, bad.segments, "r-bad-rule")
    assert {t: lake.version(t) for t in before} == before


def test_audience_export_escapes_formula_cells_and_keeps_plain_numbers(spark, tmp_path):
    """OWASP CSV injection: a cell starting with = + - @, tab or CR is prefixed with a quote."""
    import csv

    from cdi.analytics import export_audience, spreadsheet_safe_frame
    from cdi.lake import Lake

    lake = Lake(spark, str(tmp_path / "lake"), job="test", run_id="r1")
    people = [
        ("C1", '=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0", "@SUM(A1)", "c1@example.org"),
        ("C2", "\tTab Name", "\rCR", "-2+3", "-12.5"),
        ("C3", "Ann Lee", "Ann", "Lee", "+4930123456"),
    ]
    c360 = spark.createDataFrame(people, "customer_id string, full_name string, first_name string, last_name string, email string")
    c360 = c360.withColumn("phone", F.lit(None).cast("string")).withColumn("reachable_email", F.lit(True))
    lake.write("gold/customer_360", c360, mode="overwrite")
    members = spark.createDataFrame([("all", c, "r1") for c in ("C1", "C2", "C3")], "segment string, customer_id string, run_id string")
    lake.write("gold/segments", members, mode="overwrite")

    masked = export_audience(lake, "all", str(tmp_path / "masked"))
    with open(masked["file"], newline="", encoding="utf-8") as f:
        assert {r["customer_id"]: r["email"] for r in csv.DictReader(f)}["C1"] == "c***@example.org"  # the default
    out = export_audience(lake, "all", str(tmp_path / "out"), masked=False)
    with open(out["file"], newline="", encoding="utf-8") as f:
        rows = {r["customer_id"]: r for r in csv.DictReader(f)}
    assert rows["C1"]["full_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert rows["C1"]["first_name"] == "'+cmd|' /C calc'!A0" and rows["C1"]["last_name"] == "'@SUM(A1)"
    assert rows["C1"]["email"] == "c1@example.org"
    assert rows["C2"]["full_name"].startswith("'\t") and rows["C2"]["last_name"] == "'-2+3"
    assert rows["C2"]["email"] == "-12.5" and rows["C3"]["email"] == "+4930123456"
    assert rows["C3"]["full_name"] == "Ann Lee"

    typed = spark.createDataFrame([(-12.5, "-12.5", "=1+1")], "amount double, note string, formula string")
    assert spreadsheet_safe_frame(typed).collect()[0].asDict() == {"amount": -12.5, "note": "-12.5", "formula": "'=1+1"}
