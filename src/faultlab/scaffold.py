"""Writing a new drill project: a project a package ships, as it ships, or a skeleton for
one's own system.

A package ships a project by registering a module under the ``faultlab.projects`` entry
points (:data:`faultlab.registry.projects`): the module has ``name``, ``summary`` and
``FILES``, glob patterns of the files beside it (a stack file, scenarios, plans...), which
:func:`write_project` copies into a new folder keeping their relative paths, so that the
scenarios' ``stack: ../stacks/...`` keep pointing at the stack file. :func:`write_skeleton`
writes :mod:`faultlab.skeleton` the same way. Neither ever overwrites a file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from faultlab.errors import InputError, Problem

__all__ = ["project_files", "write_project", "write_skeleton", "default_project"]


def project_files(module: ModuleType | Any) -> list[tuple[str, Path]]:
    """``(relative path, source file)`` of every file the project module's ``FILES`` match."""
    root = Path(str(module.__file__)).parent
    found: dict[str, Path] = {}
    for pattern in module.FILES:
        matches = sorted(p for p in root.glob(pattern) if p.is_file())
        if not matches:
            raise InputError([Problem(str(root), 0, 0, "", f"the project {getattr(module, 'name', module.__name__)!r} "
                                                         f"ships no file for {pattern!r}; is it installed whole?")])
        for path in matches:
            found.setdefault(path.relative_to(root).as_posix(), path)
    return sorted(found.items())


def _write(files: Iterable[tuple[str, Path]], dest: Path) -> list[Path]:
    files = list(files)
    clashes = [rel for rel, _ in files if (dest / rel).exists()]
    if clashes:
        more = f" and {len(clashes) - 3} more" if len(clashes) > 3 else ""
        raise InputError([Problem(str(dest), 0, 0, "", f"{', '.join(clashes[:3])}{more} already exist here; "
                                                       "faultlab init writes only new files (choose an empty folder)")])
    written = []
    for rel, source in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)  # the file itself, even where the source is a link
        written.append(target)
    return written


def default_project() -> str:
    """The name of the one project installed; an InputError naming them when there are several
    or none."""
    from faultlab.registry import projects

    names = projects.names()
    if len(names) == 1:
        return names[0]
    why = "no project is installed" if not names else f"several projects are installed: {', '.join(names)}"
    raise InputError([Problem("--project", 0, 0, "", f"{why}; say which with --project NAME, or write a skeleton "
                                                     "with --bare")])


def write_project(dest: str | os.PathLike[str], name: str | None = None) -> list[Path]:
    """Copy the project ``name`` (the one installed, by default) into ``dest``; the files written."""
    from faultlab.registry import projects

    module = projects.get(name or default_project())
    return _write(project_files(module), Path(dest))


def write_skeleton(dest: str | os.PathLike[str]) -> list[Path]:
    """Write the skeleton for one's own system (:mod:`faultlab.skeleton`) into ``dest``."""
    from faultlab import skeleton

    return _write(project_files(skeleton), Path(dest))
