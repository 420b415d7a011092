"""Static checks of the viewer's ES modules (size, relative imports that resolve, no DOM in
the run model, valid syntax), so a typo in a module path fails here, not only in the
browser."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.viewer_static_support import NODE, NODE_TIMEOUT, RUN_MODEL, STATIC, needs_node

MAX_MODULE_LINES = 450

_COMMENTS = re.compile(r"/\*[\s\S]*?\*/|(?<![:\"'])//[^\n]*")
_IMPORT = re.compile(
    r"""\b(?:import|export)\s*(?:([\w$\s{},*]+?)\s*from\s*)?["']([^"']+)["']"""
    r"""|\bimport\(\s*["']([^"']+)["']\s*\)"""
)
_EXPORTED = re.compile(
    r"^export\s+(?:async\s+)?(?:function\*?|class|const|let|var)\s+([\w$]+)", re.MULTILINE
)
_EXPORT_LIST = re.compile(r"^export\s*\{([^}]*)\}", re.MULTILINE)


def modules() -> list[Path]:
    found = sorted(STATIC.rglob("*.js")) + sorted(STATIC.rglob("*.mjs"))
    assert found, f"no JavaScript under {STATIC}"
    return found


def code_of(path: Path) -> str:
    return _COMMENTS.sub("", path.read_text(encoding="utf-8"))


def exported_names(path: Path) -> set[str]:
    code = code_of(path)
    names = set(_EXPORTED.findall(code))
    for group in _EXPORT_LIST.findall(code):
        names |= {part.split(" as ")[-1].strip() for part in group.split(",") if part.strip()}
    return names


def imports_of(path: Path) -> list[tuple[str, set[str]]]:
    """(specifier, names imported by name) of each static or dynamic import."""
    found = []
    for match in _IMPORT.finditer(code_of(path)):
        clause, specifier = match.group(1) or "", match.group(2) or match.group(3)
        names = set()
        braces = re.search(r"\{([^}]*)\}", clause)
        if braces:
            names = {p.split(" as ")[0].strip() for p in braces.group(1).split(",") if p.strip()}
        found.append((specifier, names))
    return found


def test_viewer_modules_are_small() -> None:
    for path in modules():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_MODULE_LINES, (
            f"{path.relative_to(STATIC)} has {lines} lines (at most {MAX_MODULE_LINES}): "
            "split it into smaller modules"
        )


def test_viewer_imports_resolve() -> None:
    for path in modules():
        for specifier, names in imports_of(path):
            where = f"{path.relative_to(STATIC)} imports {specifier!r}"
            # The gateway serves files, with no bare-name resolution and no build step.
            assert specifier.startswith(("./", "../")), f"{where}: only relative paths work"
            target = (path.parent / specifier).resolve()
            assert target.is_relative_to(STATIC.resolve()), f"{where}: outside gateway/static"
            assert target.is_file(), f"{where}: no such file"
            missing = names - exported_names(target)
            assert not missing, f"{where}: it does not export {sorted(missing)}"
    # The page's own references.
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    assets = re.findall(r"""(?:src|href)=["']/static/([^"']+)["']""", page)
    assert "viewer.js" in assets
    for asset in assets:
        assert (STATIC / asset).is_file(), f"index.html refers to /static/{asset}: no such file"


def test_run_model_needs_no_dom() -> None:
    """run_model.js and what it imports never mention `document` or `window` (Node loads it)."""
    pending, checked = [RUN_MODEL], set()
    while pending:
        path = pending.pop()
        if path in checked:
            continue
        checked.add(path)
        code = re.sub(r"""(["'`])(?:\\.|(?!\1).)*\1""", '""', code_of(path))
        found = re.search(r"\b(document|window|localStorage|navigator)\b", code)
        assert found is None, f"{path.name} (loaded with run_model.js) uses {found.group()}"
        pending += [(path.parent / spec).resolve() for spec, _ in imports_of(path)]


@needs_node
def test_viewer_modules_parse(tmp_path: Path) -> None:
    """Every module is valid ES module syntax (a syntax error blanks the whole viewer)."""
    assert NODE is not None
    for path in modules():
        copy = tmp_path / f"{path.stem}.mjs"  # .mjs: parsed as a module by any Node version
        copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        done = subprocess.run(
            [NODE, "--check", str(copy)],
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"{path.name} does not parse:\n{done.stderr}"
