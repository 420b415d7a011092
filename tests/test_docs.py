"""Every example in docs/events.md is a valid message, and every message type is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

from oriole.audit import AuditRecord
from oriole.checkpoint import RunCheckpoint
from oriole.events import RUN_EVENT_TYPES, DeadLetter, ExperimentRejected, parse_run_event
from oriole.experiment import ExperimentStart
from oriole.intents import AgentFailure, AgentIntent, CancelRequest, StartCommand

DOC = Path(__file__).resolve().parents[1] / "docs" / "events.md"

OTHER_MODELS = {
    "experiment.start": ExperimentStart,
    "experiment.rejected": ExperimentRejected,
    "run.start": StartCommand,
    "agent.intent": AgentIntent,
    "agent.failure": AgentFailure,
    "run.cancel": CancelRequest,
    "dead_letter": DeadLetter,
    "runs.checkpoint": RunCheckpoint,
    "gateway.audit": AuditRecord,
}


def _examples() -> list[dict[str, object]]:
    blocks = re.findall(r"```json\n(.*?)\n```", DOC.read_text(encoding="utf-8"), flags=re.S)
    return [json.loads(block) for block in blocks]


def test_every_example_validates() -> None:
    examples = _examples()
    assert len(examples) >= 12
    run_types = {t.model_fields["type"].default for t in RUN_EVENT_TYPES}
    for example in examples:
        kind = example.get("type")
        if kind in run_types:
            parse_run_event(json.dumps(example))
        else:
            assert kind in OTHER_MODELS, f"undocumented example type {kind!r}"
            OTHER_MODELS[kind].model_validate(example)  # type: ignore[attr-defined]


def test_every_type_has_a_section_and_an_example() -> None:
    text = DOC.read_text(encoding="utf-8")
    kinds = {e.get("type") for e in _examples()}
    for model in (*RUN_EVENT_TYPES, *OTHER_MODELS.values()):
        kind = model.model_fields["type"].default  # type: ignore[attr-defined]
        assert f"## {kind}" in text or f"### {kind}" in text, kind
        assert kind in kinds, f"no example of {kind}"
