"""``faultlab validate``, ``faultlab schema`` and ``faultlab kinds``: the input-side commands."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import textwrap
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from faultlab.errors import ExitCode, InputError, Problem

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate``, ``schema`` and ``kinds``."""
    validate = subparsers.add_parser(
        "validate",
        help="check stacks, scenarios and drill plans; report every problem at once",
        description=(
            "Check stack files, scenarios and drill plans without starting anything. Every "
            "problem in every file is reported, as FILE:LINE:COL: YAML.PATH: message; a "
            "scenario's stack and a plan's scenarios are checked too."
        ),
        epilog="exit codes: 0 everything is valid, 2 a problem was found",
    )
    validate.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a file, a folder (its *.yaml and *.yml, recursively) or a glob like 'scenarios/ft-0*.yaml'",
    )
    validate.add_argument("--runtime", metavar="NAME", default=None,
                          help="check every stack as this runtime would run it, whatever its `runtime:` says")
    validate.set_defaults(handler=_validate)

    schema = subparsers.add_parser(
        "schema",
        help="print or write the JSON Schemas of the documents",
        description=(
            "JSON Schemas (draft 2020-12) of the stack, scenario and drill-plan documents, "
            "generated from the models and the installed fault kinds, for editors and CI."
        ),
    )
    schema.add_argument(
        "--kind", choices=["scenario", "stack", "plan", "runbook", "operators"],
        help="one document kind (default: all of them)"
    )
    schema.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="write stack.schema.json, scenario.schema.json, drill-plan.schema.json into DIR "
        "instead of printing",
    )
    schema.set_defaults(handler=_schema)

    kinds = subparsers.add_parser(
        "kinds",
        help="list every fault kind with its targets and parameters",
        description=(
            "Every fault kind that can be written as `fault:` in a timeline entry (built-in and "
            "from plugins): what it targets, whether it needs `for`, which runtimes run it, and "
            "its parameters with their units and defaults; then every runtime a stack file's "
            "`runtime:` may name, with what it offers fault kinds."
        ),
    )
    kinds.add_argument("--json", action="store_true", help="print JSON instead of a table")
    kinds.set_defaults(handler=_kinds)


# --- validate ---------------------------------------------------------------------------


def _expand(paths: list[str]) -> tuple[list[Path], list[Problem]]:
    files: list[Path] = []
    problems: list[Problem] = []
    for given in paths:
        path = Path(given)
        if path.is_file():
            found = [path]
        elif path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in (".yaml", ".yml")
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                problems.append(Problem(given, 0, 0, "", "folder holds no .yaml or .yml file"))
        else:
            found = sorted(Path(p) for p in glob.glob(given, recursive=True) if os.path.isfile(p))
            if not found:
                problems.append(Problem(given, 0, 0, "", "no such file or folder, and no file matches it"))
        files.extend(p for p in found if p not in files)
    return files, problems


def _describe(document: Any) -> str:
    from faultlab.model import DrillPlan, Scenario, Stack
    from faultlab.model.operators import OperatorScript
    from faultlab.model.programme import Programme
    from faultlab.model.runbook import Runbook

    if isinstance(document, Scenario):
        return f"scenario {document.id}"
    if isinstance(document, Stack):
        return f"stack {document.name}"
    if isinstance(document, DrillPlan):
        count = len(document.scenario_files)
        return f"drill plan, {count} scenario{'s' if count != 1 else ''}"
    if isinstance(document, Runbook):
        return f"runbook {document.id} version {document.version}, {len(document.steps)} steps"
    if isinstance(document, OperatorScript):
        return f"operator script, {len(document.participants)} participants"
    if isinstance(document, Programme):
        return f"programme, {len(document.operations)} critical operations, plan {document.plan.name}"
    return type(document).__name__


def _is_rules(file: Path) -> bool:
    """Whether ``file`` is a Prometheus rules file (checked as one, not as a document)."""
    from faultlab.loader import document_kind, parse_yaml

    try:
        parsed = parse_yaml(file.read_bytes(), str(file))
    except OSError:
        return False
    return document_kind(parsed.data, file) == "rules"


def _validate(args: argparse.Namespace) -> ExitCode:
    from faultlab.loader import check_runtime_override, load_any, load_rules

    check_runtime_override(args.runtime)
    files, problems = _expand(args.paths)
    for file in files:
        try:
            if _is_rules(file):
                alerts = load_rules(file)
                print(f"ok  {file} (Prometheus rules, {len(alerts)} alert{'s' if len(alerts) != 1 else ''})",
                      flush=True)
                continue
            document = load_any(file, runtime=args.runtime)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        print(f"ok  {file} ({_describe(document)})", flush=True)
    if problems:
        raise InputError(sorted(set(problems)))
    return ExitCode.OK


# --- schema -----------------------------------------------------------------------------


def _schema(args: argparse.Namespace) -> ExitCode:
    from faultlab import schema

    kinds = [args.kind] if args.kind else list(schema.KINDS)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            target = args.out / schema.FILE_NAMES[kind]
            target.write_text(schema.render(schema.document_schema(kind)), encoding="utf-8")
            print(f"wrote {target}")
        return ExitCode.OK
    if len(kinds) == 1:
        sys.stdout.write(schema.render(schema.document_schema(kinds[0])))
    else:
        sys.stdout.write(schema.render(schema.all_schemas()))
    return ExitCode.OK


# --- kinds ------------------------------------------------------------------------------


def _unit(annotation: Any, metadata: list[Any]) -> str | None:
    from faultlab import units
    from faultlab.model import types as model_types

    names = {
        units.parse_duration: "duration",
        units.parse_rate: "rate",
        units.parse_size: "size",
        units.parse_bandwidth: "bandwidth",
        units.parse_percentage: "percentage",
        model_types._fraction: "fraction",
    }
    for item in metadata:
        func = getattr(item, "func", None)
        if func in names:
            return names[func]
    for arg in get_args(annotation):
        found = _unit(arg, list(getattr(arg, "__metadata__", ())))
        if found:
            return found
    return None


def _type_text(annotation: Any, metadata: list[Any]) -> str:
    unit = _unit(annotation, metadata)
    if unit:
        return unit
    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin in (Union, types.UnionType):
        return " | ".join(_type_text(a, []) for a in args)
    if str(origin).endswith("Literal"):
        return "|".join(str(a) for a in get_args(annotation))
    if origin is list:
        return f"list of {_type_text(args[0], [])}" if args else "list"
    return {int: "integer", float: "number", str: "text", bool: "true|false"}.get(annotation, str(annotation))


def _kind_rows() -> list[dict[str, Any]]:
    from pydantic_core import PydanticUndefined

    from faultlab.registry import fault_kinds, runtimes

    rows = []
    for name, kind in fault_kinds.items():
        params = []
        for field, info in kind.Params.model_fields.items():
            required = info.default is PydanticUndefined and info.default_factory is None
            params.append(
                {
                    "name": info.alias or field,
                    "type": _type_text(info.annotation, list(info.metadata)),
                    "default": None if required else info.default,
                    "required": required,
                    "help": info.description or "",
                }
            )
        rows.append(
            {
                "kind": name,
                "targets": sorted(kind.target_types),
                "for": "required" if kind.needs_for else "no (instantaneous)",
                "summary": kind.summary,
                "requires": sorted(kind.requires),
                "runtimes": [runtime for runtime, cls in runtimes.items() if cls.supports(kind)],
                "parameters": params,
                "source": fault_kinds.source(name),
            }
        )
    return rows


def _runtime_rows() -> list[dict[str, Any]]:
    from faultlab.registry import runtimes

    return [
        {"runtime": name, "summary": cls.summary, "capabilities": sorted(cls.capabilities),
         "source": runtimes.source(name)}
        for name, cls in runtimes.items()
    ]


def _kinds(args: argparse.Namespace) -> ExitCode:
    rows = _kind_rows()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return ExitCode.OK
    width = max(len(row["kind"]) for row in rows) if rows else 4
    target_width = max((len(", ".join(row["targets"])) for row in rows), default=6)
    runtime_width = max([len("RUNTIMES"), *(len(", ".join(row["runtimes"]) or "none") for row in rows)])
    print(f"{'KIND':<{width}}  {'TARGET':<{target_width}}  {'FOR':<8}  {'RUNTIMES':<{runtime_width}}  SUMMARY")
    for row in rows:
        needs = "required" if row["for"] == "required" else "-"
        targets = ", ".join(row["targets"])
        on = ", ".join(row["runtimes"]) or "none"
        print(f"{row['kind']:<{width}}  {targets:<{target_width}}  {needs:<8}  {on:<{runtime_width}}  "
              f"{row['summary']}")
        for param in row["parameters"]:
            default = f"default {_shown_default(param['default'])}"
            if param["required"]:
                default = "required"
            line = f"{param['name']}: {param['type']} ({default})"
            if param["help"]:
                line += f"  {param['help']}"
            print("    " + textwrap.shorten(line, width=150, placeholder=" ..."))
    print()
    print("Runtimes (a stack file's `runtime:`; a kind runs where the runtime offers all it requires):")
    for runtime in _runtime_rows():
        print(f"  {runtime['runtime']}: {runtime['summary']}")
        print(f"    offers: {', '.join(runtime['capabilities']) or 'nothing beyond the basics'}")
    print()
    print("Every entry: {at: DURATION, fault: KIND, target: NAME, for: DURATION, <parameters>}.")
    print(
        "Units: durations 250ms 20s 2m 1h; rates 20/s; sizes 64KB 1MiB; bandwidths 100KB/s; "
        "percentages 50%."
    )
    return ExitCode.OK


def _shown_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
