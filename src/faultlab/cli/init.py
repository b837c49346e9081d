"""``faultlab init``: a new drill project in a folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from faultlab.errors import ExitCode, InputError, Problem

__all__ = ["register"]


def register(subparsers: Any) -> None:
    init = subparsers.add_parser(
        "init",
        help="write a new drill project: the bundled one as it ships, or a skeleton for your own system",
        description=(
            "Write a project that runs as it is into DIR: the stack files, the failure-test scenarios, "
            "the runbooks, the drill plans with their scripted people and the programme file of a project "
            "an installed package ships (the one installed unless --project names another). With --bare, "
            "write a commented skeleton for your own system instead: a stack file, a drill plugin module "
            "with the faultlab_* hooks, one scenario and a placeholder service. Never overwrites a file."
        ),
        epilog="example: faultlab init demo && cd demo && faultlab drill drills/smoke.yaml",
    )
    init.add_argument("dir", type=Path, nargs="?", help="the folder to write (created if needed; not with --list)")
    init.add_argument("--bare", action="store_true", help="a skeleton for your own system")
    init.add_argument("--project", default=None, help="which installed project (see --list)")
    init.add_argument("--list", action="store_true", help="list the installed projects and exit")
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> ExitCode:
    from faultlab.registry import projects
    from faultlab.scaffold import write_project, write_skeleton

    if args.list:
        for name, module in projects.items():
            print(f"{name:<12} {getattr(module, 'summary', '')}")
        return ExitCode.OK
    if args.dir is None:
        raise InputError([Problem("DIR", 0, 0, "", "name the folder to write: faultlab init DIR [--bare]")])
    written = write_skeleton(args.dir) if args.bare else write_project(args.dir, args.project)
    for path in written:
        print(f"wrote {path}")
    first = "faultlab run scenarios/first.yaml" if args.bare else "faultlab drill drills/smoke.yaml"
    print(f"next: cd {args.dir} && faultlab validate . && {first}")
    return ExitCode.OK
