"""Entity resolution with Splink: one model, two engines (DuckDB on one machine, Spark on a cluster).

* :func:`run_link` - the link stage (silver/records -> silver/pairs, silver/entity_map, silver/id_history)
* :func:`choose_backend` - which engine a run uses and why
* :class:`ModelStore` - trained models as versioned files under ``<lake_root>/models/linkage``
* :func:`settings_creator` - the Splink settings built from ``linkage:`` config

    >>> from cdi.silver.linkage import run_link
    >>> figures = run_link(lake, cfg.linkage, run_id)  # doctest: +SKIP
"""

from .backends import DuckDBBackend, SparkBackend, choose_backend
from .model import ModelError, ModelStore, SavedModel, settings_creator
from .stage import LinkResult, run_link

__all__ = [
    "DuckDBBackend",
    "LinkResult",
    "ModelError",
    "ModelStore",
    "SavedModel",
    "SparkBackend",
    "choose_backend",
    "run_link",
    "settings_creator",
]
