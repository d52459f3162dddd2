"""The closed vocabularies shipped in ``cdi/data`` (read once, keyed by their folded form)."""

from __future__ import annotations

import csv
import functools
import importlib.resources

from cdi.errors import LookupTableError

from .text import fold_text


@functools.cache
def load_table(name: str) -> tuple[dict[str, str], ...]:
    """Rows of ``cdi/data/<name>`` (``#`` lines are comments), read with importlib.resources."""
    resource = importlib.resources.files("cdi").joinpath("data", name)
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise LookupTableError(
            f"lookup table cdi/data/{name} is missing from the installed package; reinstall it "
            "(pip install -e .) so the shipped CSV files are present"
        ) from exc
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    rows = tuple({k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(lines))
    if not rows:
        raise LookupTableError(f"lookup table cdi/data/{name} has no rows")
    return rows


@functools.cache
def keyed(name: str, key: str, value: str, where: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """``fold(row[key]) -> row[value]`` of one table (rows matching ``where`` pairs); two different
    values for one key is an error."""
    out: dict[str, str] = {}
    for i, row in enumerate(load_table(name)):
        if any(row.get(k) != v for k, v in where):
            continue
        k = fold_text(row[key])
        if k is None:
            raise LookupTableError(f"cdi/data/{name}: row {i + 1}: {key} {row[key]!r} is empty once folded")
        if k in out and out[k] != row[value]:
            raise LookupTableError(
                f"cdi/data/{name}: row {i + 1}: {key} {row[key]!r} (folded {k!r}) maps to both "
                f"{out[k]!r} and {row[value]!r}; keep one"
            )
        out[k] = row[value]
    return out
