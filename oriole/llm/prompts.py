"""Versioned prompts shipped with Oriole, and the rule that keeps them comparable.

A run records the prompt version *and* its full text. Comparisons group runs by version, so
a version name must always mean the same text: a released prompt (a file
``oriole/prompts/<version>.md`` listed in ``oriole/prompts/released.toml`` with the sha256 of
its text) is never edited; new wording gets a new version name. ``verify_released`` is what
the test suite runs to enforce this.

The sha256 is taken over the prompt text as it travels in events (UTF-8, ``\\n`` line ends,
no leading or trailing whitespace), so a run's ``prompt.text`` can be checked against the
registry.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Final

from oriole.errors import ValidationError
from oriole.experiment import PromptSpec

__all__ = [
    "DEFAULT_PROMPT_VERSION",
    "REGISTRY_FILE",
    "Release",
    "ReleasedPrompt",
    "check_releases",
    "is_released",
    "load_prompt",
    "normalise_prompt",
    "parse_registry",
    "prompt_sha256",
    "prompt_versions",
    "released_prompts",
    "verify_released",
]

#: The prompt an LLM run gets when its start event names none.
DEFAULT_PROMPT_VERSION: Final = "v1"
REGISTRY_FILE: Final = "released.toml"
_VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HOW_TO_CHANGE = "released prompts are immutable: copy the file to a new version name instead"


@dataclass(frozen=True, slots=True)
class Release:
    """One entry of the registry: which text a version name stands for, since when."""

    version: str
    sha256: str
    released: date


@dataclass(frozen=True, slots=True)
class ReleasedPrompt:
    version: str
    sha256: str
    released: date
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]


def normalise_prompt(text: str) -> str:
    """The canonical form of a prompt text: ``\\n`` line ends, outer whitespace removed."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def prompt_sha256(text: str) -> str:
    return hashlib.sha256(normalise_prompt(text).encode("utf-8")).hexdigest()


def parse_registry(text: str, source: str = REGISTRY_FILE) -> dict[str, Release]:
    """``released.toml``: one table per version with ``sha256`` and ``released`` (a date)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(source, f"not valid TOML ({exc})") from exc
    releases: dict[str, Release] = {}
    for version, entry in document.items():
        where = f"{source}: [{version}]"
        if not _VERSION_NAME.match(version):
            raise ValidationError(
                where, "a version name is 1-100 of A-Z a-z 0-9 . _ -, starting alphanumeric"
            )
        if not isinstance(entry, dict):
            raise ValidationError(where, "expected a table with sha256 and released")
        unknown = sorted(set(entry) - {"sha256", "released"})
        if unknown:
            raise ValidationError(f"{where}.{unknown[0]}", "unknown key")
        sha = entry.get("sha256")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise ValidationError(f"{where}.sha256", "expected 64 lowercase hex digits")
        released = entry.get("released")
        if not isinstance(released, date):
            raise ValidationError(f"{where}.released", "expected a date such as 2026-11-24")
        releases[version] = Release(version, sha, released)
    return releases


def check_releases(files: Mapping[str, str], releases: Mapping[str, Release]) -> list[str]:
    """Every problem between the prompt files (version -> text) and the registry."""
    problems: list[str] = []
    for version in sorted(files):
        release = releases.get(version)
        if release is None:
            problems.append(
                f"prompts/{version}.md is not listed in {REGISTRY_FILE}: add "
                f'[{version}] sha256 = "{prompt_sha256(files[version])}" and its release date'
            )
        elif prompt_sha256(files[version]) != release.sha256:
            problems.append(
                f"prompts/{version}.md was changed after its release (sha256 "
                f"{prompt_sha256(files[version])[:12]}…, released as {release.sha256[:12]}…); "
                f"{_HOW_TO_CHANGE}, restore this one and add the new one to {REGISTRY_FILE}"
            )
    for version in sorted(set(releases) - set(files)):
        problems.append(f"{REGISTRY_FILE} lists {version} but prompts/{version}.md is missing")
    return problems


def _folder() -> Traversable:
    return resources.files("oriole").joinpath("prompts")


@cache
def _shipped() -> tuple[dict[str, str], dict[str, Release]]:
    """The packaged prompt files (version -> normalised text) and the registry."""
    folder = _folder()
    files = {
        item.name.removesuffix(".md"): normalise_prompt(item.read_text(encoding="utf-8"))
        for item in folder.iterdir()
        if item.name.endswith(".md") and item.is_file()
    }
    registry = folder.joinpath(REGISTRY_FILE)
    text = registry.read_text(encoding="utf-8") if registry.is_file() else ""
    return files, parse_registry(text, f"oriole/prompts/{REGISTRY_FILE}")


def verify_released() -> list[str]:
    """Problems with the shipped prompts (empty when every file matches its release)."""
    return check_releases(*_shipped())


def released_prompts() -> list[ReleasedPrompt]:
    """The usable released prompts, oldest release first (then by name)."""
    files, releases = _shipped()
    found = [
        ReleasedPrompt(r.version, r.sha256, r.released, files[r.version])
        for r in releases.values()
        if r.version in files and prompt_sha256(files[r.version]) == r.sha256
    ]
    return sorted(found, key=lambda p: (p.released, p.version))


def prompt_versions() -> list[str]:
    return [prompt.version for prompt in released_prompts()]


def is_released(version: str) -> bool:
    """True for a version name that is taken by a released prompt (even a broken one)."""
    return version in _shipped()[1]


def load_prompt(version: str) -> PromptSpec:
    """The released prompt ``version`` with its full text."""
    files, releases = _shipped()
    release = releases.get(version)
    if release is None or version not in files:
        available = ", ".join(prompt_versions()) or "none"
        raise ValidationError(
            "prompt.version", f"unknown prompt version {version!r}; available: {available}"
        )
    text = files[version]
    if prompt_sha256(text) != release.sha256:
        # A packaging error, not the user's: refuse rather than record a different text
        # under a released name.
        raise ValidationError(
            "prompt.version",
            f"the installed text of {version!r} does not match its release; {_HOW_TO_CHANGE}",
        )
    return PromptSpec(version=version, text=text)
