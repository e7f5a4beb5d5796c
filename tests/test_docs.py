"""The README documents what the code offers: every service setting, every CLI command."""

import dataclasses
import pathlib

from cytoatlas.cli import build_parser
from cytoatlas.serving.config import Settings, env_name

README = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented_with_its_flag_and_environment_variable():
    for field in dataclasses.fields(Settings):
        assert f"`--{field.name.replace('_', '-')}`" in README, field.name
        assert f"`{env_name(field.name)}`" in README, field.name


def test_every_cli_command_appears_in_the_readme():
    commands = build_parser()._subparsers._group_actions[0].choices
    for command in commands:
        assert f"cytoatlas {command}" in README, command
