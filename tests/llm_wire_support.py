"""The three wire formats and the chat requests the wire tests render with them."""

from __future__ import annotations

import json
from typing import Any

from oriole.experiment import ModelOptions
from oriole.llm.chat import ChatRequest, Message, ToolCall
from oriole.llm.tools import TOOLS
from oriole.llm.wire import WireFormat
from oriole.llm.wire.bedrock import BedrockWire
from oriole.llm.wire.ollama import OllamaWire
from oriole.llm.wire.openai import OpenAIWire

BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"

OLLAMA = OllamaWire()
OPENAI = OpenAIWire()
BEDROCK = BedrockWire()
WIRES: dict[str, WireFormat] = {"ollama": OLLAMA, "openai": OPENAI, "bedrock": BEDROCK}

MOVE_NORTH = TOOLS[0]


def conversation() -> tuple[Message, ...]:
    return (
        Message("system", "You are in a maze."),
        Message("user", "You stand at (2,2). Find the goal."),
        Message(
            "assistant",
            "Let me look around.",
            tool_calls=(
                ToolCall("c1", "move_north", {"reasoning": "open"}),
                ToolCall("c2", "move_east", '{"reasoning": "also open"}'),
            ),
        ),
        Message("tool", "moved to (2,1)", tool_call_id="c1", tool_name="move_north"),
        Message("tool", "blocked by a wall", tool_call_id="c2", tool_name="move_east"),
        Message("user", "Your turn."),
    )


def chat_request(options: ModelOptions | None = None, model: str = "qwen2.5:7b") -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=conversation(),
        tools=TOOLS,
        options=options or ModelOptions(),
    )


def request_of(messages: tuple[Message, ...]) -> ChatRequest:
    return ChatRequest(model="m", messages=messages, tools=TOOLS)


def json_bytes(data: Any) -> bytes:
    return json.dumps(data).encode()
