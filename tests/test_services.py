"""Service wiring: every service of a process is built by one place and shares its catalogue."""

from __future__ import annotations

from pathlib import Path

from oriole.cli.services import Services
from oriole.environment.catalogue import MazeCatalogue
from oriole.environment.settings import load_settings
from oriole.kafka.topics import Topics


def test_the_services_of_one_process_share_one_catalogue_and_one_configuration(
    tmp_path: Path,
) -> None:
    settings = load_settings(env_file=None, home=tmp_path, projection_batch_size=123)
    catalogue = MazeCatalogue.from_settings(settings)
    services = Services(settings, "127.0.0.1:9", Topics("wiring"), catalogue)
    worker = services.worker()
    gateway = services.gateway(pool=None)
    projector = services.projector(pool=None)
    assert worker.processor.find_maze.__self__ is catalogue  # type: ignore[attr-defined]
    assert gateway.commands.find_maze.__self__ is catalogue  # type: ignore[attr-defined]
    assert worker.processor.topics is gateway.topics is services.topics
    assert projector.batch_size == 123
