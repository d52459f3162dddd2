"""The README's table reference is generated from the schemas (``cdi tables``)."""

from __future__ import annotations

import json
from pathlib import Path

from cdi import reference, schema
from cdi.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_table_reference_is_the_generated_one():
    block = reference.readme_block(README.read_text(encoding="utf-8"))
    assert block is not None, f"README.md has no block between {reference.README_BEGIN!r} and {reference.README_END!r}"
    assert block == reference.markdown(), "README.md's table reference is stale: paste the output of `cdi tables`"


def test_every_contract_table_is_in_the_reference_with_typed_columns():
    paths = [t.path for t in reference.tables()]
    for name in dir(schema):
        value = getattr(schema, name)
        if name.isupper() and isinstance(value, str) and "/" in value:
            assert value in paths, f"schema.{name} ({value}) is missing from cdi.reference.tables()"
    untyped = [(t.path, c) for t in reference.tables() for c, dtype in t.columns if not dtype]
    assert untyped == []


def test_cdi_tables_prints_json_without_spark(capsys):
    assert main(["tables", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    golden = next(t for t in listed if t["table"] == schema.GOLDEN_RECORDS)
    assert {"name": "is_current", "type": "boolean"} in golden["columns"]
