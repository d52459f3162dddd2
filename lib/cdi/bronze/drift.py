"""Schema drift between a source's files and its configuration or bronze table.

* A column the configuration relies on (id columns, the customer reference, cross-references, ``updated_at``,
  mapped, required or typed columns) missing from a file fails the source, naming the file
  and the column: silently ingesting nulls would corrupt every later stage.
* A column that is new to the bronze table is added to it (and logged); bronze keeps all
  columns a source ever had, older rows holding nulls in the new ones.
* A changed type (a Parquet column turning from int to string) or a new field *inside* a JSON
  object column cannot be added to an existing column: the batch fails with the lake's schema
  message naming the table and column, and nothing of it is kept.

    >>> missing = missing_columns(source, {"file:/data/crm.csv": ["contact_id", "name"]})  # doctest: +SKIP
"""

from __future__ import annotations

from cdi.config import SourceConfig
from cdi.errors import SourceSchemaError


def expected_columns(source: SourceConfig) -> dict[str, str]:
    """Column -> why the configuration needs it."""
    need: dict[str, str] = {}
    for c in source.id_columns:
        need.setdefault(c, "id column")
    if source.customer_ref:
        need.setdefault(source.customer_ref.column, f"customer reference to source '{source.customer_ref.source}'")
    for ref in source.references:
        for c in ref.columns():
            need.setdefault(c, f"cross-reference to source '{ref.source}'")
    if source.updated_at:
        need.setdefault(source.updated_at.column, "updated_at column")
    for target in source.mapping:
        spec = source.column_spec(target)
        for column in spec.source_columns() if spec is not None else []:
            need.setdefault(column, f"mapped to {target}")
    for c in source.required:
        need.setdefault(c, "required field")
    for c in source.types:
        need.setdefault(c, f"declared type {source.types[c]}")
    return need


def _present(name: str, columns: list[str]) -> bool:
    return name in columns or name.split(".", 1)[0] in columns


def missing_columns(source: SourceConfig, columns_per_unit: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(file, column, why) for every needed column a file lacks."""
    need = expected_columns(source)
    out: list[tuple[str, str, str]] = []
    for unit in sorted(columns_per_unit):
        cols = columns_per_unit[unit]
        out.extend((unit, c, why) for c, why in need.items() if not _present(c, cols))
    return out


def check_required_columns(source: SourceConfig, columns_per_unit: dict[str, list[str]]) -> None:
    missing = missing_columns(source, columns_per_unit)
    if not missing:
        return
    listed = "; ".join(f"file {unit} has no column '{col}' ({why})" for unit, col, why in missing[:10])
    more = f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""
    raise SourceSchemaError(
        f"source '{source.name}': {listed}{more}. Nothing of this batch was ingested; fix the file, or the "
        f"source's configuration ({source.origin or 'its sources entry'}) if the column was renamed"
    )


def new_columns(columns: list[str], table_columns: list[str] | None) -> list[str]:
    """Source columns the bronze table does not have yet (all of them for a new table: none)."""
    if table_columns is None:
        return []
    known = {c.lower() for c in table_columns}
    return [c for c in columns if c.lower() not in known]
