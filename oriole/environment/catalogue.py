"""The maze library: named maze files under ``$ORIOLE_HOME/mazes`` plus extra folders.

Start events may name a maze instead of embedding it; workers resolve the name here and put
the full grid into the run's first event, so a later edit of the file cannot change a run.
Adding a maze never silently replaces a different maze of the same name, and files are
written atomically.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from oriole.environment.settings import Settings
from oriole.errors import MazeError
from oriole.maze import Maze


class MazeCatalogue:
    """Build one per process (the composition root does) and share it: the folders are
    indexed once, and again only when a name is not found (a maze imported meanwhile)."""

    def __init__(self, library: Path, extra_dirs: Iterable[Path] = ()) -> None:
        self.library = library
        self.dirs = [library, *extra_dirs]
        self._cache: dict[Path, tuple[float, Maze]] = {}
        self._index: dict[str, Path] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MazeCatalogue:
        """The library under ``$ORIOLE_HOME/mazes`` plus the configured extra folders."""
        return cls(settings.home / "mazes", settings.maze_dirs)

    def _scan(self) -> dict[str, Path]:
        """Name -> file; the library wins over extra folders, earlier folders over later."""
        found: dict[str, Path] = {}
        for folder in self.dirs:
            if folder.is_dir():
                for path in sorted(folder.glob("*.json")):
                    found.setdefault(path.stem, path)
        self._index = found
        return found

    def _files(self) -> dict[str, Path]:
        return self._scan() if self._index is None else self._index

    def _find(self, name: str) -> Path | None:
        """The file of ``name``; a miss re-reads the folders once (and so does a deleted file)."""
        path = self._files().get(name)
        if path is None or not path.is_file():
            path = self._scan().get(name)
        return path

    def names(self) -> list[str]:
        return sorted(self._scan())

    def _load(self, path: Path) -> Maze:
        mtime = path.stat().st_mtime
        cached = self._cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        maze = Maze.load(path)
        self._cache[path] = (mtime, maze)
        return maze

    def get(self, name: str) -> Maze:
        path = self._find(name)
        if path is None:
            known = ", ".join(self.names()[:20]) or "none; add some with `oriole mazes import`"
            raise MazeError("maze_name", f"unknown maze {name!r} (known: {known})")
        return self._load(path)

    def resolve(self, reference: str) -> Maze:
        """A path to a maze file, or the name of a maze in the catalogue."""
        path = Path(reference).expanduser()
        if path.suffix == ".json" or os.sep in reference:
            if path.is_file():
                return Maze.load(path)
            if path.suffix == ".json" and self._find(path.stem) is not None:
                return self.get(path.stem)
            raise MazeError("maze", f"no maze file at {path}")
        return self.get(reference)

    def add(self, maze: Maze, *, replace: bool = False) -> Path:
        """Store ``maze`` in the library under its name; returns the file written."""
        if "/" in maze.name or "\\" in maze.name or maze.name.startswith("."):
            raise MazeError("name", f"{maze.name!r} cannot be used as a file name")
        target = self.library / f"{maze.name}.json"
        if target.exists() and not replace:
            existing = Maze.load(target)
            if existing.content_hash != maze.content_hash:
                raise MazeError(
                    "name",
                    f"the library already has a different maze named {maze.name!r} "
                    f"({existing.content_hash[:19]}...); pass --replace to overwrite it",
                )
            return target
        self.library.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.library, prefix=".import-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(maze.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._cache.pop(target, None)
        self._index = None  # the library may now shadow a maze of an extra folder
        return target
