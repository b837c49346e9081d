"""``faultlab keys new|list``: the drill lead's signing keys (Ed25519)."""

from __future__ import annotations

import argparse
from typing import Any

from faultlab.errors import ExitCode

__all__ = ["register", "add_sign_with"]


def add_sign_with(parser: argparse.ArgumentParser) -> None:
    """The ``--sign-with NAME`` option of every command that seals a package."""
    parser.add_argument("--sign-with", metavar="NAME", default=None,
                        help="seal with this key of faultlab's key folder (default: the only key there is; "
                             "none: sealed unsigned, and the package says so)")


def register(subparsers: Any) -> None:
    """Add ``keys new`` and ``keys list``."""
    keys = subparsers.add_parser("keys", help="make and list the keys that sign drill evidence")
    sub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)
    new = sub.add_parser(
        "new",
        help="make an Ed25519 key pair for sealing runs and drill plans",
        description=(
            "Make an Ed25519 key pair in $XDG_CONFIG_HOME/faultlab/keys (else ~/.config/faultlab/keys): "
            "NAME.key (private, readable by you only) and NAME.pub (public: give it to whoever checks the "
            "evidence, `faultlab verify DIR --trust NAME.pub`). An existing key is never overwritten."
        ),
        epilog="example: faultlab keys new --name drill-lead",
    )
    new.add_argument("--name", required=True, help="the key's name (letters, digits, '.', '_', '-')")
    new.set_defaults(handler=_new)
    listing = sub.add_parser("list", help="list the signing keys of the key folder")
    listing.set_defaults(handler=_list)


def _new(args: argparse.Namespace) -> ExitCode:
    from faultlab.evidence.keys import load_signing_key, new_key

    private, public = new_key(args.name)
    key = load_signing_key(args.name)
    print(f"made key {args.name} (key id {key.public.key_id})")
    print(f"  private: {private} (keep it; it signs as you)")
    print(f"  public:  {public} (hand it to whoever verifies: faultlab verify DIR --trust {public})")
    return ExitCode.OK


def _list(args: argparse.Namespace) -> ExitCode:
    from faultlab.evidence.keys import keys_dir, list_keys, load_signing_key

    names = list_keys()
    if not names:
        print(f"no signing keys in {keys_dir()}; make one with `faultlab keys new --name NAME`")
        return ExitCode.OK
    for name in names:
        print(f"{name:<20} key id {load_signing_key(name).public.key_id}  {keys_dir() / (name + '.pub')}")
    return ExitCode.OK
