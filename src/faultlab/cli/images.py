"""``faultlab images``: the images the docker runtime runs, built here without a registry."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from faultlab.errors import ExitCode

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``images build`` and ``images list``."""
    images = subparsers.add_parser(
        "images",
        help="build or list the docker runtime's images (no registry needed)",
        description=(
            "The docker runtime runs one image built on this machine: a Debian root made with "
            "debootstrap, faultlab's dependencies from wheels built here, and faultlab itself (this "
            "code). Nothing is pulled from a registry. The engine is $DOCKER_HOST's, else the local one."
        ),
    )
    commands = images.add_subparsers(dest="images_command", metavar="COMMAND", required=True)
    build = commands.add_parser(
        "build",
        help="build the images that are missing (reusing what is built)",
        description=(
            "Build faultlab/base (debootstrap; needs root and debootstrap), faultlab/deps (the "
            "dependencies' wheels, built with pip's own configuration) and faultlab/stack (this "
            "code's wheel), each only when missing. Exit code 3 when something cannot be built."
        ),
        epilog="example: faultlab images build",
    )
    build.add_argument("--force", action="store_true", help="build every image again")
    build.add_argument("--source", type=Path, default=None,
                       help="faultlab's source tree, the one installed here (default: found from the install)")
    build.set_defaults(handler=_build)
    listing = commands.add_parser("list", help="the images this code needs, and whether the engine has them")
    listing.set_defaults(handler=_list)


def _build(args: argparse.Namespace) -> ExitCode:
    from faultlab.runtime.engine import connect, engine_url
    from faultlab.runtime.images import build_images

    client = connect()
    print(f"engine: {engine_url()}", flush=True)
    report = build_images(client, source=args.source, force=args.force, log=lambda line: print(line, flush=True))
    for image in report.images:
        took = f" in {image.seconds:.0f} s" if image.state == "built" else ""
        print(f"  {image.state:<6}  {image.name}{took}")
    print(f"images ready in {report.seconds:.0f} s")
    return ExitCode.OK


def _list(args: argparse.Namespace) -> ExitCode:
    from faultlab.runtime.engine import connect, engine_url
    from faultlab.runtime.images import BASE_REPOSITORY, DEPS_REPOSITORY, STACK_REPOSITORY, stack_image

    client = connect()
    wanted = stack_image()
    print(f"engine: {engine_url()}; this code runs {wanted}")
    for repository in (BASE_REPOSITORY, DEPS_REPOSITORY, STACK_REPOSITORY):
        for image in client.images.list(name=repository):
            for tag in image.tags:
                mark = "  <- this code" if tag == wanted else ""
                print(f"  {tag:<48} {image.attrs.get('Size', 0) / 1e6:>6.0f} MB{mark}")
    if not client.images.list(name=wanted.split(":")[0], filters={"reference": wanted}):
        print(f"missing: {wanted}; run `faultlab images build`")
        return ExitCode.INFRASTRUCTURE
    return ExitCode.OK
