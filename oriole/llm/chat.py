"""A provider-neutral conversation: what Oriole sends to a model and what comes back.

Each wire format (Ollama, OpenAI-compatible, Bedrock Converse) renders these types into its
own request body and parses its own response into a `ModelReply`; nothing else in Oriole
knows a provider's JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from oriole.experiment import ModelOptions

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool the model may call; ``parameters`` is a JSON Schema object (never mutated:
    renderers copy it)."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call exactly as the model made it.

    ``arguments`` is kept as given: a JSON object (a dict), a string that should hold one
    (possibly malformed), or ``None``. ``id`` is the provider's id (OpenAI, Bedrock: unique in
    the conversation, and sent back with the result), or for Ollama, which has none, one
    made up per reply (Ollama matches results by order and tool name).
    """

    id: str
    name: str
    arguments: Any


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    #: For ``role == "tool"``: the call this message answers.
    tool_call_id: str | None = None
    tool_name: str | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    options: ModelOptions = field(default_factory=ModelOptions)


@dataclass(frozen=True, slots=True)
class ModelReply:
    """The assistant's message and what the provider reported about producing it.

    Token counts are ``None`` when the provider did not report them (never guessed as 0).
    Durations are the server's own figures in milliseconds, when it gives them.
    """

    message: Message
    input_tokens: int | None
    output_tokens: int | None
    done_reason: str | None = None
    duration_ms: float | None = None
    prompt_eval_ms: float | None = None
    eval_ms: float | None = None
    tokens_per_second: float | None = None
