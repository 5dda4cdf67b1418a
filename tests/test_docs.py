"""README must name every setting and every command, so the docs cannot fall behind."""

from pathlib import Path

import click
import pytest

from server.cli import main
from server.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("name", Settings.__struct_fields__)
def test_every_setting_is_documented(name):
    assert f"`JEBOL_{name.upper()}`" in README


def _commands(group: click.Group, prefix: str = "jebol") -> list[str]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix} {name}")
        else:
            found.append(f"{prefix} {name}")
    return found


@pytest.mark.parametrize("command", _commands(main))
def test_every_command_is_documented(command):
    assert command in README


def test_readme_names_both_make_targets():
    assert "make run" in README and "make test" in README
