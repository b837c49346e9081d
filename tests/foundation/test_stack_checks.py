"""What only the loader can tell about a stack: the ``${...}`` written in commands and environments."""

from __future__ import annotations

from pathlib import Path

import pytest

from faultlab.errors import InputError
from faultlab.loader import load_stack

STACK = """\
name: mini
services:
  db:
    postgres: {{database: d, user: u}}
  gateway:
    command: [app]
    port: auto
    env:
      VALUE: {value}
links:
  gateway-db: {{from: gateway, to: db}}
"""


def problems(tmp_path: Path, value: str) -> list[str]:
    path = tmp_path / "stack.yaml"
    path.write_text(STACK.format(value=value))
    try:
        load_stack(path)
    except InputError as exc:
        return [f"{p.line}: {p.path}: {p.message}" for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"$port"', "'$port' is not interpolated: write ${port} (or $$ for a literal $)"),
        ('"x-$port-y"', "'$port' is not interpolated: write ${port} (or $$ for a literal $)"),
        ('"$run_dir/out"', "'$run_dir' is not interpolated: write ${run_dir} (or $$ for a literal $)"),
        (
            '"postgresql://u@$link.gateway-db/d"',
            "'$link.gateway-db' is not interpolated: write ${link.gateway-db} (or $$ for a literal $)",
        ),
        (
            '"http://$service.db"',
            "'$service.db' is not interpolated: write ${service.db} (or $$ for a literal $)",
        ),
        (
            '"$HOME/x"',
            "'$HOME' is not interpolated: faultlab knows ${port}, ${host}, ${link.NAME}, ${service.NAME}, "
            "${run_dir}, ${stack_dir} and ${window}; write $$HOME for a literal $HOME",
        ),
        ('"${port"', "'${port' has no closing '}': write ${port}"),
    ],
)
def test_a_dollar_that_is_almost_surely_a_slip(tmp_path: Path, value: str, message: str) -> None:
    assert problems(tmp_path, value) == [f"9: services.gateway.env.VALUE: {message}"]


@pytest.mark.parametrize(
    "value", ['"${port}"', '"$$HOME"', '"cost: 5$"', '"$5"', '"a $ b"', '"$$${port}"', '"${link.gateway-db}"']
)
def test_what_is_not_a_slip(tmp_path: Path, value: str) -> None:
    assert problems(tmp_path, value) == []


def test_a_slip_in_a_command_argument(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(STACK.format(value="x").replace("command: [app]", 'command: [app, "--port=$port"]'))
    with pytest.raises(InputError) as info:
        load_stack(path)
    assert [(p.line, p.path) for p in info.value.problems] == [(6, "services.gateway.command[1]")]
    assert "write ${port}" in info.value.problems[0].message
