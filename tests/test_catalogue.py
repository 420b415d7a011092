"""The maze library: indexed once per process, re-read only when a name is not found."""

from __future__ import annotations

from pathlib import Path

import pytest

from oriole.environment.catalogue import MazeCatalogue
from oriole.errors import MazeError
from oriole.generators import generate


def _write(folder: Path, name: str, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    maze = generate("backtracker", 9, 9, seed=seed, name=name)
    (folder / f"{name}.json").write_text(maze.to_json(), encoding="utf-8")


def test_lookups_use_the_index_and_a_miss_reads_the_folders_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "mazes"
    _write(library, "first", 1)
    catalogue = MazeCatalogue(library)
    scans = 0
    scan = catalogue._scan

    def counting_scan() -> dict[str, Path]:
        nonlocal scans
        scans += 1
        return scan()

    monkeypatch.setattr(catalogue, "_scan", counting_scan)
    for _ in range(5):
        assert catalogue.get("first").name == "first"
    assert scans == 1  # indexed once, not once per lookup

    _write(library, "second", 2)  # e.g. `oriole mazes import` while a worker runs
    assert catalogue.get("second").name == "second"
    assert scans == 2
    assert catalogue.get("second").name == "second"
    assert scans == 2


def test_a_deleted_file_is_noticed_and_the_library_shadows_extra_folders(tmp_path: Path) -> None:
    library, extra = tmp_path / "mazes", tmp_path / "extra"
    _write(extra, "shared", 3)
    catalogue = MazeCatalogue(library, [extra])
    from_extra = catalogue.get("shared")
    added = generate("backtracker", 11, 11, seed=4, name="shared")
    catalogue.add(added)  # the library now has its own "shared"
    assert catalogue.get("shared").content_hash == added.content_hash != from_extra.content_hash
    (library / "shared.json").unlink()
    assert catalogue.get("shared").content_hash == from_extra.content_hash
    (extra / "shared.json").unlink()
    with pytest.raises(MazeError, match="unknown maze 'shared'"):
        catalogue.get("shared")
