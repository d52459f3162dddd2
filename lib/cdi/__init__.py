"""Customer data integration: one trusted, versioned golden record per real customer.

The public Python API, for scripts and notebooks (names load on first use, so ``import cdi``
starts no Spark and imports no PySpark)::

    from cdi import load_config, run, Lake, connect
    cfg = load_config("conf/demo.yaml")
    result = run(cfg)                      # every stage; result.summary.format() is the run summary
    ws = connect("conf/demo.yaml")         # a notebook's read-only view of the lake
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": "cdi.config",
    "CdiConfig": "cdi.config",
    "run": "cdi.pipeline",
    "maintain": "cdi.pipeline",
    "open_session": "cdi.pipeline",
    "PipelineResult": "cdi.pipeline",
    "Lake": "cdi.lake",
    "connect": "cdi.analytics",
    "CdiError": "cdi.errors",
    "ConfigError": "cdi.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cdi' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
