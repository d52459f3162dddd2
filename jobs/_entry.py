"""Shared bootstrap for the spark-submit entry points: make ``cdi`` importable when the package
is shipped with ``--py-files`` or sits next to this folder, then hand over to the CLI."""

from __future__ import annotations

import os
import sys


def main(command: str) -> None:
    try:
        import cdi  # noqa: F401  (installed, or shipped with --py-files)
    except ImportError:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    from cdi.cli import main as cli_main

    sys.exit(cli_main([command, *sys.argv[1:]]))
