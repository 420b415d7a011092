"""What a fake LLM server answers next and what it records.

A test scripts behaviours (a reply, an HTTP error, a hang, ...) one per chat request; once the
script runs out, a ``brain`` answers, by default the deterministic ``MazeBrain``. Every
request the fake receives is kept as a ``RecordedRequest``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ArgumentsAs = Literal["object", "string"]


@dataclass(frozen=True)
class Reply:
    """A successful chat reply; ``tool_calls`` are (name, arguments) pairs.

    ``arguments_as`` picks how arguments travel: ``"object"`` (Ollama's and Bedrock's
    default) or ``"string"`` (OpenAI's default); a string argument is always sent as given,
    which is how a test sends malformed JSON. ``done_reason`` overrides the provider's own.
    """

    content: str = ""
    tool_calls: Sequence[tuple[str, Any]] = ()
    input_tokens: int | None = 100
    output_tokens: int | None = 20
    arguments_as: ArgumentsAs | None = None
    done_reason: str | None = None


@dataclass(frozen=True)
class HttpError:
    """An error response in the provider's own body shape (Bedrock: x-amzn-ErrorType)."""

    status: int
    message: str = "simulated failure"
    retry_after: str | None = None
    error_type: str | None = None


@dataclass(frozen=True)
class Hang:
    """Never answer: the handler waits until the server stops (the client gives up first)."""


@dataclass(frozen=True)
class NoToolSupport:
    """The provider's real answer when the model (or server setup) cannot call tools."""


@dataclass(frozen=True)
class MalformedBody:
    """HTTP 200 whose body is not JSON (a cut-off document by default)."""

    body: bytes = b'{"model": "fake", "message": {"role": "assistant", "content": "I thi'


@dataclass(frozen=True)
class NoMessage:
    """HTTP 200 JSON without the message (Ollama: no ``message``; OpenAI: no choices;
    Bedrock: no ``output.message``)."""


Behaviour = Reply | HttpError | Hang | NoToolSupport | MalformedBody | NoMessage


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; ``body`` is the parsed JSON (None if not JSON)."""

    method: str
    #: Decoded path; ``raw_path`` keeps the percent-encoding (and query) as sent.
    path: str
    raw_path: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    chat: bool
    model: str | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


Brain = Callable[[RecordedRequest], Behaviour]


class MazeBrain:
    """A deterministic stand-in model: one or two moves per reply, mostly keeping its
    heading and sometimes turning, with varying but reproducible token counts."""

    DIRECTIONS = ("north", "east", "south", "west")

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._heading = 0

    def __call__(self, request: RecordedRequest) -> Behaviour:
        calls: list[tuple[str, Any]] = []
        for _ in range(self._rng.choice((1, 1, 2))):
            if self._rng.random() < 0.35:
                self._heading = (self._heading + self._rng.choice((1, 3))) % 4
            direction = self.DIRECTIONS[self._heading]
            reasoning = f"Heading {direction}: that way is still unexplored."
            calls.append((f"move_{direction}", {"reasoning": reasoning}))
        return Reply(
            content="" if self._rng.random() < 0.5 else "Exploring.",
            tool_calls=calls,
            input_tokens=max(1, len(request.raw_body) // 4),
            output_tokens=self._rng.randint(15, 60) * len(calls),
        )
