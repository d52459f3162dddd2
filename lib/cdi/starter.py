"""``cdi init DIR``: a starter project from the templates shipped inside the package.

The templates are the repository's own files where they exist (the matching, survivorship and
analytics configuration, the spark-submit entry point, the segmentation notebook: linked into
``cdi/templates/project`` and copied into the wheel), plus an environment file, one example
source and its data. The copies name the project's environment file instead of the demo's.
"""

from __future__ import annotations

import logging
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from cdi.errors import ConfigError

log = logging.getLogger(__name__)

ENV_FILE = "conf/project.yaml"
_DEMO_ENV = "conf/demo.yaml"
_TEXT = (".yaml", ".py", ".ipynb", ".md")  # data files are copied byte for byte


def template_files() -> dict[str, Traversable]:
    """Relative path -> template file, for every file of the starter project."""
    root = resources.files("cdi") / "templates" / "project"
    found: dict[str, Traversable] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            else:
                found[prefix + entry.name] = entry

    if not root.is_dir():
        raise ConfigError(f"the starter templates are missing from this installation ({root}); reinstall cdi")
    walk(root, "")
    return found


def init_project(target: str | Path, *, force: bool = False) -> list[Path]:
    """Write the starter project into ``target`` and return the files written.

    A folder that already holds files is refused unless ``force``; then the template files are
    written over and every other file is kept.
    """
    folder = Path(target)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"cdi init: {folder} is a file; give a folder for the new project")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise ConfigError(
            f"cdi init: {folder} is not empty; give a new folder, or add --force to write the starter "
            "files over it (other files are kept)"
        )
    written = []
    for relative, template in sorted(template_files().items()):
        dest = folder / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.suffix in _TEXT:
            dest.write_text(template.read_text(encoding="utf-8").replace(_DEMO_ENV, ENV_FILE), encoding="utf-8")
        else:
            dest.write_bytes(template.read_bytes())
        written.append(dest)
    log.info("cdi init: wrote %d files into %s", len(written), folder)
    return written
