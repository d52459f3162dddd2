"""A small lake for the service's steward tests: a copy of the three-run story's lake (which
other modules share) with scored pairs, and the tokens of two roles."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from cdi import schema

STEWARD_TOKEN = "steward-token-0123456789"
AUDITOR_TOKEN = "auditor-token-0123456789"


@pytest.fixture(scope="module")
def steward_lake(story, tmp_path_factory):
    """A copy of the story's lake (the story is shared) with two scored pairs: C6 and C7 (split
    in run r2) at 0.8, in the review band, and C1's two records at 0.999, above it."""
    root = tmp_path_factory.mktemp("steward-lake") / "lake"
    shutil.copytree(story["cfg"].lake_root, root)
    pairs = [
        {"record_key_l": "crm:6", "record_key_r": "shop:6", "match_probability": 0.8, "match_weight": 2.0,
         "mw_name": 8.5, "mw_email": -4.1, "run_id": "r3"},
        {"record_key_l": "crm:1", "record_key_r": "shop:1", "match_probability": 0.999, "match_weight": 10.0,
         "mw_name": 8.5, "mw_email": 1.5, "run_id": "r3"},
    ]  # fmt: skip
    write_deltalake(str(root / schema.PAIRS), pa.Table.from_pylist(pairs))
    return root
