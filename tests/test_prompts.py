"""The shipped prompts: every released version is intact, and the registry catches edits."""

from __future__ import annotations

import re
from datetime import date

import pytest

from oriole.errors import ValidationError
from oriole.llm.prompts import (
    DEFAULT_PROMPT_VERSION,
    Release,
    check_releases,
    load_prompt,
    parse_registry,
    prompt_sha256,
    prompt_versions,
    released_prompts,
    verify_released,
)
from oriole.llm.tools import TOOLS


def test_every_shipped_prompt_matches_its_release() -> None:
    problems = verify_released()
    assert not problems, "\n".join(problems)
    assert DEFAULT_PROMPT_VERSION in prompt_versions()
    assert {"v1", "v2-explore", "v3-minimal"} <= set(prompt_versions())


def test_load_prompt_gives_the_full_text() -> None:
    spec = load_prompt("v1")
    assert spec.version == "v1"
    assert spec.text is not None and "move_north" in spec.text
    assert prompt_sha256(spec.text) == {p.version: p.sha256 for p in released_prompts()}["v1"]


def test_unknown_version_names_the_field_and_the_choices() -> None:
    with pytest.raises(ValidationError) as caught:
        load_prompt("v99")
    assert caught.value.field == "prompt.version"
    assert "unknown prompt version 'v99'; available: v1, v2-explore" in caught.value.reason


@pytest.mark.parametrize("version", ["v1", "v2-explore", "v3-minimal"])
def test_prompts_name_only_real_tools_and_leave_the_goal_to_the_wrapper(version: str) -> None:
    text = load_prompt(version).text
    assert text is not None
    tools = {tool.name for tool in TOOLS}
    named = set(re.findall(r"\b(?:move|recall)_[a-z_]+\b", text))
    assert named <= tools, named - tools
    assert {"move_north", "move_south", "move_east", "move_west"} <= named
    assert not re.search(r"^\s*goal\s*:", text, flags=re.I | re.M)
    assert "experiment" not in text.lower()
    assert "undefined" not in text


def test_an_edited_release_is_caught_with_instructions() -> None:
    text = "Find the goal."
    release = Release("v1", prompt_sha256(text), date(2026, 1, 1))
    assert check_releases({"v1": text}, {"v1": release}) == []
    assert check_releases({"v1": "\r\nFind the goal.\r\n"}, {"v1": release}) == []
    [problem] = check_releases({"v1": "Find the goal quickly."}, {"v1": release})
    assert "changed after its release" in problem and "new version name" in problem


def test_unlisted_files_and_missing_files_are_caught() -> None:
    release = Release("gone", prompt_sha256("x"), date(2026, 1, 1))
    problems = check_releases({"draft": "New text."}, {"gone": release})
    assert any("draft.md is not listed" in p and prompt_sha256("New text.") in p for p in problems)
    assert any("lists gone but prompts/gone.md is missing" in p for p in problems)


def test_registry_errors_name_the_key() -> None:
    with pytest.raises(ValidationError, match=r"\[v1\]\.sha256"):
        parse_registry('[v1]\nsha256 = "abc"\nreleased = 2026-01-01\n')
    with pytest.raises(ValidationError, match=r"\[v1\]\.released"):
        parse_registry(f'[v1]\nsha256 = "{"0" * 64}"\nreleased = "soon"\n')
    with pytest.raises(ValidationError, match="not valid TOML"):
        parse_registry("[v1")
