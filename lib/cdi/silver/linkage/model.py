"""The linkage model as data: Splink settings built from ``linkage:`` config, and trained models
kept as versioned files in the lake (``<lake_root>/models/linkage/v0001/model.json``).

Comparisons are authored once, dialect-free (Splink's comparison level library), and rendered
for whichever backend runs. A trained model is stored as Splink's own JSON (loadable with
``splink.Linker(df, "model.json")`` on the backend that trained it) plus ``meta.json`` (config
snapshot, comparisons fingerprint, prior, records, when and where it was trained). To score on
any backend the settings are rendered afresh for that backend's SQL from the same comparisons
(the fingerprint must match) and the trained m/u probabilities and prior are copied in level by
level (:func:`apply_parameters`). That is what makes DuckDB and Spark score identically.

    >>> creator = settings_creator(cfg.linkage)  # doctest: +SKIP
    >>> store = ModelStore(cfg.lake_root)  # doctest: +SKIP
    >>> store.latest()  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import splink.comparison_level_library as cll
from splink import ColumnExpression, SettingsCreator
from splink.comparison_library import CustomComparison

from cdi.config import ComparisonConfig, LinkageConfig
from cdi.errors import ConfigError, ModelError
from cdi.sql import plain_identifier

from . import blocking

log = logging.getLogger(__name__)

UNIQUE_ID = "record_key"
RETAINED_COLUMNS = ["source", "source_record_id"]
MODEL_FORMAT = 1
# Bumped when training changes what a model means; an older saved model is retrained once.
# 2: household-aware levels carry the u of the whole agreement (pool_household_u).
TRAINING_PROCEDURE = 2
_VERSION_DIR = re.compile(r"^v(\d{4,})$")


# --------------------------------------------------------------------------- comparisons


def concat_column(c: ComparisonConfig) -> str:
    """Derived full-name column a forename/surname comparison uses for its term frequencies."""
    return f"{c.column}_{c.second_column}_concat"


# Term frequencies damp common values ("maria garcia", a shared office number) but may not
# turn a rare value into near-proof: a different person with the same rare name is still
# likelier than 1 in 10,000 comparisons.
TF_MINIMUM_U = 1e-4


def _exact(col: str, tf: bool, label: str | None = None):
    level = cll.ExactMatchLevel(col, term_frequency_adjustments=tf)
    if tf:
        level.configure(tf_minimum_u_value=TF_MINIMUM_U)
    return level.configure(label_for_charts=label) if label else level


def _name(c: ComparisonConfig):
    alias = c.alias_column or c.second_column
    levels = [cll.NullLevel(c.column), _exact(c.column, c.term_frequency)]
    if alias:
        levels.append(cll.ExactMatchLevel(alias).configure(label_for_charts=f"{alias} agrees (alias, nickname)"))
    levels += [cll.JaroWinklerLevel(c.column, t) for t in (c.thresholds or [0.92, 0.88, 0.7])]
    return levels + [cll.ElseLevel()]


def _forename_surname(c: ComparisonConfig):
    if not c.second_column:
        raise ConfigError(f"comparison '{c.name or c.column}': kind forename_surname needs second_column (the surname)")
    fn, sn, alias = c.column, c.second_column, c.alias_column
    levels: list = [cll.And(cll.NullLevel(fn), cll.NullLevel(sn))]
    if c.term_frequency:
        levels.append(_exact(concat_column(c), True, "Exact given name and surname"))
    else:
        levels.append(cll.And(cll.ExactMatchLevel(fn), cll.ExactMatchLevel(sn)))
    levels.append(
        cll.ColumnsReversedLevel(fn, sn, symmetrical=True).configure(label_for_charts="Given name and surname swapped")
    )
    # levenshtein is native to DuckDB and Spark SQL alike, so the one condition runs on both
    a, b = plain_identifier(fn), plain_identifier(sn)
    levels.append(
        cll.CustomLevel(
            f"levenshtein({a}_l, {b}_r) + levenshtein({b}_l, {a}_r) <= 2",
            label_for_charts="Given name and surname swapped, up to two typos",
            base_dialect_str="duckdb",
        )
    )
    if alias:
        levels.append(
            cll.And(cll.ExactMatchLevel(alias), cll.ExactMatchLevel(sn)).configure(
                label_for_charts="Nickname of given name, exact surname"
            )
        )
    for t in c.thresholds or [0.92, 0.88]:
        levels.append(
            cll.And(cll.JaroWinklerLevel(fn, t), cll.JaroWinklerLevel(sn, t)).configure(
                label_for_charts=f"Jaro-Winkler >= {t} on both names"
            )
        )
    levels.append(_exact(sn, c.term_frequency, "Exact surname, given name differs"))
    given = cll.Or(cll.ExactMatchLevel(fn), cll.ExactMatchLevel(alias)) if alias else cll.ExactMatchLevel(fn)
    levels.append(given.configure(label_for_charts="Given name agrees, surname differs"))
    return levels + [cll.ElseLevel()]


# A level whose m and u are fixed equal: present in charts, but worth exactly 0 match weight.
NEUTRAL = {"m_probability": 0.01, "u_probability": 0.01, "fix_m_probability": True, "fix_u_probability": True}


def _same_person_possible(c: ComparisonConfig):
    """The two records can be one person: given names agree (similar, same alias, written in the
    surname field, or one is missing) and birth dates do not conflict (within a year, or one is
    missing)."""
    conditions = []
    if c.given_name_column:
        given = c.given_name_column
        agrees = [cll.NullLevel(given), cll.JaroWinklerLevel(given, 0.88)]
        if c.alias_column:
            agrees.append(cll.ExactMatchLevel(c.alias_column))
        if c.surname_column:
            a, b = plain_identifier(given), plain_identifier(c.surname_column)
            agrees.append(
                cll.CustomLevel(
                    f"levenshtein({a}_l, {b}_r) <= 1 or levenshtein({b}_l, {a}_r) <= 1", base_dialect_str="duckdb"
                )
            )
        conditions.append(cll.Or(*agrees))
    if c.date_of_birth_column:
        dob = c.date_of_birth_column
        conditions.append(
            cll.Or(
                cll.NullLevel(dob),
                cll.AbsoluteDateDifferenceLevel(dob, input_is_string=False, threshold=1, metric="year"),
            )
        )
    return conditions


def _household_split(c: ComparisonConfig, agreement, label: str, tf_column: str | None = None) -> list:
    """``agreement`` as two levels: when the records can be one person (trained), and when the
    given names or birth dates conflict (neutral).

    Twins share a date of birth, and families an address; under Splink's independence
    assumption that agreement would add as much evidence for a sibling or a parent as for the
    person, so next to a conflicting given name or birth date it is made to count for nothing,
    unless ``identifier_column`` (a national id) agrees: relatives do not share one, so then the
    conflict is a typo and the agreement is the person's.
    """
    tf: dict[str, Any] = {"tf_adjustment_column": tf_column, "tf_minimum_u_value": TF_MINIMUM_U} if tf_column else {}
    conditions = _same_person_possible(c)
    if not conditions:
        return [agreement.configure(label_for_charts=label, **tf)]
    names = [w for w, col in (("given name", c.given_name_column), ("birth date", c.date_of_birth_column)) if col]
    fits = f"{' and '.join(names)} agree" if len(names) > 1 else f"{names[0]} agrees"
    conflicts = f"{' or '.join(names)} differs"
    possible = cll.And(*conditions) if len(conditions) > 1 else conditions[0]
    if c.identifier_column:
        possible = cll.Or(possible, cll.DamerauLevenshteinLevel(c.identifier_column, 1))
        fits += f" or {c.identifier_column} agrees"
    return [
        cll.And(agreement, possible).configure(label_for_charts=f"{label}, {fits}", **tf),
        copy.deepcopy(agreement).configure(label_for_charts=f"{label}, {conflicts}", **NEUTRAL),
    ]


def training_settings(cfg: LinkageConfig, dialect: str) -> dict[str, Any]:
    """The settings u estimation starts from: each household split's conflicting (neutral) level
    keeps its fixed m but gets its u estimated, for :func:`pool_household_u` to add to the
    fitting level's. After that it is the only kind of level with a fixed m and a free u."""
    settings = settings_creator(cfg).create_settings_dict(dialect)
    for comp in settings["comparisons"]:
        for level in comp["comparison_levels"]:
            if all(level.get(k) == v for k, v in NEUTRAL.items()):
                del level["u_probability"]
                level["fix_u_probability"] = False
    return settings


def pool_household_u(splink_model: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Give each household split's fitting level the u of the whole agreement and make its
    conflicting level neutral; return the new model dict and the pooled levels' labels.

    Call on ``linker.misc.save_model_to_json()`` after u estimation from
    :func:`training_settings`. Random pairs that share an
    address but conflict on given name or birth date are counted by the conflicting level, so
    the fitting level's u alone is that of "agrees *and* the names fit", which is far rarer than
    "agrees": the name evidence, already weighed by the name comparison, would be counted again
    (at a million records a shared postcode plus "maria" outweighed a different surname and
    phone). With the u of the whole agreement the level weighs only the address (or phone, or
    birth date) itself. The pooled u is fixed so later EM sessions keep it.
    """
    out = copy.deepcopy(splink_model)
    pooled = []
    for comp in out["comparisons"]:
        levels = [lv for lv in comp["comparison_levels"] if not lv.get("is_null_level")]
        for fits, conflicts in pairwise(levels):
            if not conflicts.get("fix_m_probability") or conflicts.get("fix_u_probability") or fits.get("fix_u_probability"):
                continue
            u_conflicts = conflicts.get("u_probability") or 0.0
            conflicts.update(NEUTRAL)
            if fits.get("u_probability") is None:
                continue
            fits["u_probability"] += u_conflicts
            fits["fix_u_probability"] = True
            pooled.append(f"{comp['output_column_name']}: {fits['label_for_charts']}")
    return out, pooled


def _date_of_birth(c: ComparisonConfig):
    dob = c.column
    levels: list = [cll.NullLevel(dob)]
    levels += _household_split(c, cll.ExactMatchLevel(dob), "Exact date of birth")
    levels.append(
        cll.CustomLevel(
            f"year({dob}_l) = year({dob}_r) and month({dob}_l) = day({dob}_r) and day({dob}_l) = month({dob}_r)",
            label_for_charts="Day and month transposed",
        )
    )
    levels.append(
        cll.LevenshteinLevel(ColumnExpression(dob).cast_to_string(), 1).configure(label_for_charts="One digit differs")
    )
    for years in c.thresholds or [1]:
        levels.append(
            cll.AbsoluteDateDifferenceLevel(dob, input_is_string=False, threshold=years, metric="year").configure(
                label_for_charts=f"Within {years:g} year(s)"
            )
        )
    return levels + [cll.ElseLevel()]


def _email(c: ComparisonConfig):
    """Exact e-mail; with ``second_column`` (the user part) also same / similar user part.

    User-part levels are opt-in: user parts are made of names ("jfisher"), so namesakes agree on
    them far more often than random pairs do, and the level would count the name twice.
    """
    levels = [cll.NullLevel(c.column), _exact(c.column, c.term_frequency, "Exact e-mail")]
    if c.second_column:
        user = ColumnExpression(c.second_column)
        levels.append(cll.ExactMatchLevel(user).configure(label_for_charts="Exact e-mail user part"))
        for t in c.thresholds:
            levels.append(cll.JaroWinklerLevel(user, t).configure(label_for_charts=f"Jaro-Winkler >= {t} on user part"))
    return levels + [cll.ElseLevel()]


def _postcode(c: ComparisonConfig):
    levels = [cll.NullLevel(c.column), _exact(c.column, c.term_frequency, "Exact postcode")]
    for n in c.thresholds or [3]:
        n = int(n)
        levels.append(
            cll.ExactMatchLevel(ColumnExpression(c.column).substr(1, n)).configure(
                label_for_charts=f"First {n} characters agree"
            )
        )
    return levels + [cll.ElseLevel()]


def _address(c: ComparisonConfig):
    addr, pc = c.column, c.second_column
    thresholds = c.thresholds or [0.9, 0.8]
    levels: list
    if not pc:
        levels = [cll.NullLevel(addr)]
        levels += _household_split(c, cll.ExactMatchLevel(addr), "Exact address", addr if c.term_frequency else None)
        levels += [cll.JaroWinklerLevel(addr, t) for t in thresholds]
        return levels + [cll.ElseLevel()]
    levels = [cll.And(cll.NullLevel(addr), cll.NullLevel(pc))]
    levels += _household_split(c, cll.And(cll.ExactMatchLevel(addr), cll.ExactMatchLevel(pc)), "Exact address and postcode")
    for t in thresholds:
        levels.append(
            cll.And(cll.JaroWinklerLevel(addr, t), cll.ExactMatchLevel(pc)).configure(
                label_for_charts=f"Address Jaro-Winkler >= {t}, same postcode"
            )
        )
    levels += _household_split(c, cll.ExactMatchLevel(pc), "Same postcode, address differs or missing")
    levels.append(
        cll.JaroWinklerLevel(addr, thresholds[0]).configure(label_for_charts=f"Address Jaro-Winkler >= {thresholds[0]}")
    )
    return levels + [cll.ElseLevel()]


def _simple(c: ComparisonConfig):
    levels: list = [cll.NullLevel(c.column)]
    tf_column = c.column if c.term_frequency else None
    levels += _household_split(c, cll.ExactMatchLevel(c.column), f"Exact {c.column}", tf_column)
    if c.kind == "jaro_winkler":
        levels += [cll.JaroWinklerLevel(c.column, t) for t in (c.thresholds or [0.9])]
    elif c.kind == "levenshtein":
        levels += [cll.LevenshteinLevel(c.column, int(t)) for t in (c.thresholds or [1, 2])]
    return levels + [cll.ElseLevel()]


def _identifier(c: ComparisonConfig):
    """An id (national id, customer number) copied by hand: exact, else one character typed
    wrong, missing, extra or two adjacent ones swapped (Damerau-Levenshtein 1); different ids
    are strong evidence against."""
    levels = [cll.NullLevel(c.column), _exact(c.column, c.term_frequency, f"Exact {c.column}")]
    for n in c.thresholds or [1]:
        levels.append(
            cll.DamerauLevenshteinLevel(c.column, int(n)).configure(
                label_for_charts=f"{int(n)} typo(s) or adjacent swap(s)"
            )
        )
    return levels + [cll.ElseLevel()]


def _middle_name(c: ComparisonConfig):
    """Middle name, or its initial where one source writes only that ("J" and "John")."""
    name = ColumnExpression(c.column).lower()
    return [
        cll.NullLevel(c.column),
        cll.ExactMatchLevel(name).configure(label_for_charts="Exact middle name"),
        cll.ExactMatchLevel(ColumnExpression(c.column).lower().substr(1, 1)).configure(label_for_charts="Same initial"),
        cll.ElseLevel(),
    ]


_BUILDERS = {
    "name": _name,
    "forename_surname": _forename_surname,
    "date_of_birth": _date_of_birth,
    "email": _email,
    "postcode": _postcode,
    "address": _address,
    "exact": _simple,
    "jaro_winkler": _simple,
    "levenshtein": _simple,
    "identifier": _identifier,
    "middle_name": _middle_name,
}


def comparison_name(c: ComparisonConfig) -> str:
    if c.name:
        return c.name
    return f"{c.column}_{c.second_column}" if c.kind in ("forename_surname", "address") and c.second_column else c.column


def comparison(c: ComparisonConfig) -> CustomComparison:
    """One Splink comparison (dialect-free) from its config entry."""
    return CustomComparison(
        comparison_levels=_BUILDERS[c.kind](c),
        output_column_name=comparison_name(c),
        comparison_description=f"{c.kind} comparison of {c.column}"
        + (f" and {c.second_column}" if c.second_column else ""),
    )


def has_tf_adjustment(c: ComparisonConfig) -> bool:
    """Whether Splink adds a term-frequency column (``mw_tf_adj_<name>``) for this comparison."""
    levels = comparison(c).create_comparison_dict("duckdb")["comparison_levels"]
    return any(level.get("tf_adjustment_column") for level in levels)


def derived_columns(cfg: LinkageConfig) -> dict[str, str]:
    """Columns computed before Splink (name -> SQL both DuckDB and Spark run)."""
    out = {}
    for c in cfg.comparisons:
        if c.kind == "forename_surname" and c.term_frequency and c.second_column:
            a, b = plain_identifier(c.column), plain_identifier(c.second_column)
            out[concat_column(c)] = f"case when {a} is not null and {b} is not null then concat({a}, ' ', {b}) end"
    return out


def input_columns(cfg: LinkageConfig) -> list[str]:
    """The ``silver/records`` columns the model reads (comparisons and blocking rules)."""
    cols = [UNIQUE_ID] + RETAINED_COLUMNS
    for c in cfg.comparisons:
        optional = (c.alias_column, c.given_name_column, c.date_of_birth_column, c.surname_column, c.identifier_column)
        cols += [x for x in (c.column, c.second_column, *optional) if x]
    cols += sorted(blocking.columns_used(all_rule_sets(cfg)))
    out: list[str] = []
    for col in cols:
        if col not in out and col not in derived_columns(cfg):
            out.append(col)
    return out


def all_rule_sets(cfg: LinkageConfig) -> list[list]:
    return [cfg.blocking_rules, cfg.training_blocking_rules, cfg.deterministic_rules]


def validate(cfg: LinkageConfig) -> None:
    """Fail early, naming the config key, when the linkage settings cannot build a model."""
    if not cfg.comparisons:
        raise ConfigError("linkage.comparisons is empty: configure at least one comparison (see conf/linkage.yaml)")
    if not cfg.blocking_rules:
        raise ConfigError("linkage.blocking_rules is empty: configure at least one rule (see conf/linkage.yaml)")
    if len(cfg.training_blocking_rules) < 2:
        raise ConfigError("linkage.training_blocking_rules needs at least two rules so every parameter is estimated")
    if not cfg.deterministic_rules:
        raise ConfigError("linkage.deterministic_rules is empty: they estimate the prior (probability two records match)")
    names = [comparison_name(c) for c in cfg.comparisons]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"linkage.comparisons: output name(s) {twice} used twice; give each a distinct 'name'")


def settings_creator(cfg: LinkageConfig, *, for_explain: bool = False) -> SettingsCreator:
    """Splink settings for the configured model: dedupe over all sources' records at once.

    ``dedupe_only`` over the union of every source (each record keyed by ``record_key``) gives
    link-and-dedupe behaviour from a single input table, which both backends read the same way
    (one Parquet scan in DuckDB, one DataFrame in Spark) and keeps ``record_key`` as the node id.
    """
    validate(cfg)
    rules: list[Any] = [blocking.rule_sql(r) for r in cfg.blocking_rules]  # SQL text, which Splink accepts
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=UNIQUE_ID,
        comparisons=[comparison(c) for c in cfg.comparisons],
        blocking_rules_to_generate_predictions=rules,
        additional_columns_to_retain=list(RETAINED_COLUMNS),
        # partial match weights per comparison go to silver/pairs; the waterfall also needs the values
        retain_matching_columns=for_explain,
        retain_intermediate_calculation_columns=True,
        max_iterations=25,
        em_convergence=0.0001,
    )


def fingerprint(cfg: LinkageConfig) -> str:
    """Identity of the model's structure: a saved model fits only the comparisons it was trained with."""
    payload = json.dumps([c.model_dump() for c in cfg.comparisons], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def apply_parameters(settings: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    """Copy trained m/u probabilities and the prior into freshly rendered settings.

    Levels are matched by comparison name and position, and their chart labels must agree: a
    model trained for other comparisons raises :class:`ModelError` instead of scoring nonsense.
    """
    out = copy.deepcopy(settings)
    out["probability_two_random_records_match"] = trained["probability_two_random_records_match"]
    saved = {c["output_column_name"]: c for c in trained["comparisons"]}
    for comp in out["comparisons"]:
        name = comp["output_column_name"]
        if name not in saved:
            raise ModelError(f"the saved model has no comparison '{name}'; retrain (linkage.retrain: true)")
        levels, saved_levels = comp["comparison_levels"], saved[name]["comparison_levels"]
        if len(levels) != len(saved_levels):
            raise ModelError(f"comparison '{name}' has {len(levels)} levels, the saved model {len(saved_levels)}; retrain")
        for level, old in zip(levels, saved_levels):
            if level.get("label_for_charts") != old.get("label_for_charts"):
                raise ModelError(
                    f"comparison '{name}': level '{level.get('label_for_charts')}' differs from the saved "
                    f"'{old.get('label_for_charts')}'; retrain"
                )
            for key in ("m_probability", "u_probability"):
                if key in old:
                    level[key] = old[key]
    return out


def parameter_records(model: dict[str, Any]) -> list[dict[str, Any]]:
    """m, u, Bayes factor and match weight of every non-null level of a trained model."""
    rows = []
    for comp in model["comparisons"]:
        for level in comp["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            bf = m / u if m and u else None
            rows.append(
                {
                    "comparison": comp["output_column_name"],
                    "level": level.get("label_for_charts"),
                    "m_probability": m,
                    "u_probability": u,
                    "bayes_factor": bf,
                    "match_weight": math.log2(bf) if bf else None,
                    "tf_adjustment_column": level.get("tf_adjustment_column"),
                }
            )
    return rows


def summary_markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """A short, diffable parameter summary written next to every trained model."""
    prior = meta["probability_two_random_records_match"]
    lines = [
        f"# Linkage model v{meta['version']:04d}",
        "",
        f"- trained at: {meta['trained_at']} (run {meta.get('run_id')}) on {meta['backend']}",
        f"- records: {meta['records']:,}",
        f"- prior (probability two random records match): {prior:.3g} "
        f"(1 in {1 / prior:,.0f}; from deterministic rules, recall {meta['recall']})",
        f"- comparisons fingerprint: {meta['fingerprint']}",
        "",
        "| comparison | level | m | u | match weight |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
        lines.append(
            f"| {r['comparison']} | {r['level']} | {fmt(r['m_probability'])} | {fmt(r['u_probability'])} "
            f"| {fmt(r['match_weight'])} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- model files


def _fs(root: str):
    """Local paths use plain file I/O; URIs (s3://, abfss://, hdfs://...) go through pyarrow."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", root) and not root.startswith("file://"):
        from pyarrow import fs

        return fs.FileSystem.from_uri(root)
    return None


def write_text(path: str, text: str) -> None:
    """Write a small text file (models are files, not tables)."""
    remote = _fs(path)
    if remote is None:
        local = path.removeprefix("file://")
        os.makedirs(os.path.dirname(local), exist_ok=True)
        tmp = local + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, local)
        return
    filesystem, inner = remote
    filesystem.create_dir(os.path.dirname(inner), recursive=True)
    with filesystem.open_output_stream(inner) as out:
        out.write(text.encode("utf-8"))


def read_text(path: str) -> str:
    remote = _fs(path)
    if remote is None:
        with open(path.removeprefix("file://"), encoding="utf-8") as fh:
            return fh.read()
    filesystem, inner = remote
    with filesystem.open_input_stream(inner) as src:
        return src.read().decode("utf-8")


def _list_dir(path: str) -> list[str]:
    remote = _fs(path)
    if remote is None:
        local = path.removeprefix("file://")
        return sorted(os.listdir(local)) if os.path.isdir(local) else []
    from pyarrow import fs

    filesystem, inner = remote
    infos = filesystem.get_file_info(fs.FileSelector(inner, allow_not_found=True))
    return sorted(os.path.basename(i.path) for i in infos)


def _remove_tree(path: str) -> None:
    remote = _fs(path)
    if remote is None:
        shutil.rmtree(path.removeprefix("file://"), ignore_errors=True)
        return
    filesystem, inner = remote
    filesystem.delete_dir(inner)


def _exists(path: str) -> bool:
    remote = _fs(path)
    if remote is None:
        return os.path.exists(path.removeprefix("file://"))
    from pyarrow import fs

    filesystem, inner = remote
    return filesystem.get_file_info(inner).type != fs.FileType.NotFound


@dataclass(frozen=True)
class SavedModel:
    """One trained model version: Splink's JSON and our metadata (config snapshot, fingerprint...)."""

    version: int
    path: str
    splink_model: dict[str, Any]
    meta: dict[str, Any]

    def linkage_config(self) -> LinkageConfig:
        return LinkageConfig(**self.meta["linkage"])


class ModelStore:
    """``<lake_root>/models/linkage/vNNNN/``: the newest complete version is the current model.

    A version directory counts once its ``meta.json`` exists (written last), so a crash during
    a save never leaves a half model in use.
    """

    def __init__(self, lake_root: str, name: str = "linkage"):
        self.root = f"{lake_root.rstrip('/')}/models/{name}"

    def versions(self) -> list[int]:
        out = []
        for entry in _list_dir(self.root):
            m = _VERSION_DIR.match(entry)
            if m and _exists(f"{self.root}/{entry}/meta.json"):
                out.append(int(m.group(1)))
        return sorted(out)

    def dir(self, version: int) -> str:
        return f"{self.root}/v{version:04d}"

    def remove_incomplete(self) -> list[str]:
        """Delete version folders a killed save left without ``meta.json``; their paths.

        Call only while holding the lake's lease: then no save is in progress.
        """
        removed = []
        for entry in _list_dir(self.root):
            path = f"{self.root}/{entry}"
            if _VERSION_DIR.match(entry) and not _exists(f"{path}/meta.json"):
                _remove_tree(path)
                removed.append(path)
        return removed

    def load(self, version: int) -> SavedModel:
        path = self.dir(version)
        try:
            splink_model = json.loads(read_text(f"{path}/model.json"))
            meta = json.loads(read_text(f"{path}/meta.json"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"linkage model {path} cannot be read ({exc}); delete the folder or retrain") from exc
        return SavedModel(version, path, splink_model, meta)

    def latest(self) -> SavedModel | None:
        versions = self.versions()
        return self.load(versions[-1]) if versions else None

    def save(
        self, splink_model: dict[str, Any], meta: dict[str, Any], artefacts: dict[str, str | Callable[[dict[str, Any]], str]]
    ) -> SavedModel:
        """Write the next version: artefacts and model.json first, meta.json last."""
        existing = [int(m.group(1)) for e in _list_dir(self.root) if (m := _VERSION_DIR.match(e))]
        version = (max(existing) if existing else 0) + 1
        path = self.dir(version)
        meta = dict(meta, version=version, format=MODEL_FORMAT)
        write_text(f"{path}/model.json", json.dumps(splink_model, indent=2, sort_keys=True))
        for name, text in artefacts.items():
            write_text(f"{path}/{name}", text(meta) if callable(text) else text)
        write_text(f"{path}/meta.json", json.dumps(meta, indent=2, sort_keys=True, default=str))
        log.info("saved linkage model v%04d to %s", version, path)
        return SavedModel(version, path, splink_model, meta)
