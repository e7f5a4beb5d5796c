"""The docs document what the code offers (every service setting in docs/settings.md, every CLI
command in the README or docs/), the README stays a front page, and no relative link is broken."""

import dataclasses
import pathlib
import re

from cytoatlas.cli import build_parser
from cytoatlas.serving.config import Settings, env_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS, ROOT / "deploy" / "README.md"]
SETTINGS = (ROOT / "docs" / "settings.md").read_text()
# [text](target), outside code blocks and inline code; target = path, #anchor or path#anchor.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def anchors(page: pathlib.Path) -> set[str]:
    """The #anchors GitHub gives the page's headings (lower case, punctuation dropped, - for space)."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", page.read_text(), flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def broken_links(page: pathlib.Path) -> list[str]:
    """Relative link targets of `page` that name no existing file, or no heading of a Markdown
    file (URLs skipped)."""
    broken = []
    for target in LINK.findall(CODE.sub("", page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = page.parent / path if path else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            broken.append(target)
    return broken


def test_every_setting_is_documented_with_its_flag_and_environment_variable():
    for field in dataclasses.fields(Settings):
        assert f"`--{field.name.replace('_', '-')}`" in SETTINGS, field.name
        assert f"`{env_name(field.name)}`" in SETTINGS, field.name


def test_every_cli_command_is_documented():
    text = "\n".join(page.read_text() for page in [README, *DOCS])
    commands = build_parser()._subparsers._group_actions[0].choices
    for command in commands:
        assert f"cytoatlas {command}" in text, command


def test_the_readme_is_a_front_page_under_8_kib():
    assert README.stat().st_size < 8192, README.stat().st_size


def test_the_readme_names_the_two_set_up_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_every_relative_link_points_at_an_existing_file():
    assert DOCS, "no docs/*.md"
    broken = {str(page.relative_to(ROOT)): broken_links(page) for page in PAGES}
    assert not any(broken.values()), broken


def test_the_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top: the `page`\n[self](page.md#top-the-page) [gone](missing.md) [web](https://example.org)\n"
                    "[here](#top-the-page) [no heading](#nowhere) `[inline](nowhere.md)`\n"
                    "```\n[fenced](nowhere.md)\n```\n")
    assert broken_links(page) == ["missing.md", "#nowhere"]
