def test_spark_starts(spark):
    assert spark.range(5).count() == 5
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
