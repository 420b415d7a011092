"""The LLM turn loop (Oriole's Ollama path, spec §6.6), as a sans-I/O state machine.

A turn opens with a fresh conversation: one user message holding the versioned prompt text,
the agent's position, the goal, what it sees and its recent history (with real vision).
Each model reply may carry several tool calls; they are executed one per decision, in the
order given. The turn ends when the model answers without a tool call, when the turn's action
cap is reached, or when the goal comes into view; the next decision opens a new turn.

The shell (`providers.agent`) asks `next_step` what to do: either a ready `Decision` (a queued
tool call) or a `ChatRequest` to send; it hands the reply to `on_reply`. Nothing here
performs I/O, so every path — including trimming the context and malformed tool calls — is
unit-tested without a server.

If the runner restarts (another machine takes the run over) the in-memory turn is gone; the
next decision simply opens a new turn from the run's events, which is what every turn does
anyway.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from oriole.agents.base import Decision, Observation
from oriole.experiment import AgentSpec, PromptSpec
from oriole.intents import ActionType, ModelCall, RetryRecord
from oriole.llm.chat import ChatRequest, Message, ModelReply, ToolCall, ToolSpec
from oriole.llm.errors import ContextOverflow
from oriole.llm.tools import TOOL_ACTIONS, TOOLS
from oriole.memory import ActionRecord, exploration_history
from oriole.vision import describe_vision, goal_in_view

#: Conservative characters-per-token guess until the provider reports real counts (English
#: text averages about 4; JSON and coordinates tokenize worse).
DEFAULT_CHARS_PER_TOKEN = 3.0
#: Tokens a chat template adds around each message (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 8
#: Output tokens kept free for the reply when `max_output_tokens` is not set.
DEFAULT_REPLY_RESERVE = 1024
TRIMMED_NOTE = "[older tool result removed to fit the context window]"


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the transport knows about a call, beyond the reply itself."""

    call_id: str
    endpoint: str | None
    attempts: int = 1
    retries: tuple[RetryRecord, ...] = ()
    wall_ms: float | None = None
    cost_usd: float = 0.0


@dataclass(slots=True)
class _Turn:
    messages: list[Message]
    goal_in_view_at_start: bool
    queued: deque[ToolCall] = field(default_factory=deque)
    awaiting: ToolCall | None = None
    #: Actions decided in this turn so far.
    actions: int = 0
    #: The run's action count the next observation must show for this turn to go on.
    expected_actions: int = 0
    ended: bool = False


@dataclass(frozen=True, slots=True)
class ModelNeeded:
    """Send this request; give the reply to `TurnLoop.on_reply`."""

    request: ChatRequest
    #: Tool results of this turn replaced by a note so that the request fits `num_ctx`.
    context_trimmed: int


class TurnLoop:
    """One run's turns; keep one instance per run."""

    def __init__(self, agent: AgentSpec, prompt: PromptSpec, *, tools: Sequence[ToolSpec] = TOOLS):
        if prompt.text is None:
            raise ValueError("the prompt has no text; admission fills it in from its version")
        self.agent = agent
        self.prompt = prompt
        self.tools = tuple(tools)
        self.turn: _Turn | None = None
        self.chars_per_token = DEFAULT_CHARS_PER_TOKEN
        self._sent_chars = 0

    # --- asking -------------------------------------------------------------------------

    def next_step(
        self, observation: Observation, history: Sequence[ActionRecord]
    ) -> Decision | ModelNeeded:
        turn = self._continue(observation)
        if turn is None:
            turn = self.turn = _Turn(
                messages=[Message("user", opening_message(self.prompt, observation, history))],
                goal_in_view_at_start=goal_in_view(observation.vision),
            )
        if turn.queued:
            return self._decide(turn, turn.queued.popleft(), observation, None, "")
        # Trimmed results stay trimmed: later calls of the turn send the same prefix.
        turn.messages, trimmed = fit_context(
            turn.messages,
            self.tools,
            context_window=self.agent.options.num_ctx,
            reply_reserve=self._reply_reserve(),
            chars_per_token=self.chars_per_token,
        )
        self._sent_chars = conversation_chars(turn.messages, self.tools)
        request = ChatRequest(
            model=self.agent.model,
            messages=tuple(turn.messages),
            tools=self.tools,
            options=self.agent.options,
        )
        return ModelNeeded(request, trimmed)

    def _continue(self, observation: Observation) -> _Turn | None:
        """The current turn if it goes on with this observation, else ``None``."""
        turn = self.turn
        if turn is None or turn.ended or observation.actions != turn.expected_actions:
            return None  # a new turn, or the run moved on without us (a takeover, a redelivery)
        if turn.awaiting is not None:
            call = turn.awaiting
            turn.awaiting = None
            result = observation.last_result if observation.last_result is not None else {}
            turn.messages.append(
                Message(
                    "tool",
                    json.dumps(result, ensure_ascii=False),
                    tool_call_id=call.id,
                    tool_name=call.name,
                )
            )
        if not turn.goal_in_view_at_start and goal_in_view(observation.vision):
            return None  # the goal just came into view: Oriole ends the turn here
        cap = observation.rules.max_actions_per_turn
        if cap and turn.actions >= cap:
            return None
        return turn

    def _reply_reserve(self) -> int:
        options = self.agent.options
        if options.max_output_tokens is not None:
            return options.max_output_tokens
        if options.num_ctx is not None:
            return min(DEFAULT_REPLY_RESERVE, options.num_ctx // 4)
        return DEFAULT_REPLY_RESERVE

    # --- answering ----------------------------------------------------------------------

    def on_reply(
        self,
        reply: ModelReply,
        info: CallInfo,
        observation: Observation,
        *,
        context_trimmed: int = 0,
    ) -> Decision:
        """The decision for a fresh reply; its usage rides on this (the call's first) decision."""
        turn = self.turn
        if turn is None:
            raise RuntimeError("on_reply without a pending model call")
        if reply.input_tokens and self._sent_chars:
            # Learn how this model tokenizes, never becoming less conservative than measured.
            measured = self._sent_chars / reply.input_tokens
            self.chars_per_token = max(1.0, min(self.chars_per_token, measured))
        turn.messages.append(reply.message)
        model_call = ModelCall(
            call_id=info.call_id,
            provider=self.agent.provider,
            model=self.agent.model,
            input_tokens=reply.input_tokens or 0,
            output_tokens=reply.output_tokens or 0,
            cost_usd=info.cost_usd,
            duration_ms=reply.duration_ms if reply.duration_ms is not None else info.wall_ms,
            prompt_eval_ms=reply.prompt_eval_ms,
            eval_ms=reply.eval_ms,
            tokens_per_second=reply.tokens_per_second,
            done_reason=reply.done_reason,
            attempts=info.attempts,
            endpoint=info.endpoint,
            context_trimmed=context_trimmed,
            tool_calls=len(reply.message.tool_calls),
            retries=list(info.retries),
        )
        content = reply.message.content
        if not reply.message.tool_calls:
            turn.ended = True
            return Decision(
                action=ActionType.NO_TOOL_CALL,
                assistant_message=content,
                model_call=model_call,
                new_turn=turn.actions == 0,
            )
        turn.queued.extend(reply.message.tool_calls)
        return self._decide(turn, turn.queued.popleft(), observation, model_call, content)

    def _decide(
        self,
        turn: _Turn,
        call: ToolCall,
        observation: Observation,
        model_call: ModelCall | None,
        content: str,
    ) -> Decision:
        decision = tool_call_decision(call)
        new_turn = turn.actions == 0
        turn.actions += 1
        turn.awaiting = call
        turn.expected_actions = observation.actions + 1
        return Decision(
            action=decision.action,
            reasoning=decision.reasoning,
            depth=decision.depth,
            tool_name=decision.tool_name,
            arguments=decision.arguments,
            problem=decision.problem,
            assistant_message=content or None,
            model_call=model_call,
            new_turn=new_turn,
        )


# --- tool calls -------------------------------------------------------------------------


def tool_call_decision(call: ToolCall) -> Decision:
    """What a tool call asks for; a call Oriole cannot execute becomes an invalid action that
    the model is told about (never a crash, never silently dropped)."""
    action = TOOL_ACTIONS.get(call.name)
    arguments, problem = _arguments(call)
    if action is None:
        names = ", ".join(TOOL_ACTIONS)
        problem = f"no tool named {call.name!r}; the tools are {names}"
    if problem is not None or action is None or arguments is None:
        return Decision(
            action=ActionType.INVALID_TOOL_CALL,
            tool_name=call.name[:200] or "<unnamed>",
            arguments=arguments if arguments is not None else _raw(call.arguments),
            problem=problem,
        )
    reasoning = arguments.get("reasoning")
    depth = _depth(arguments.get("depth")) if action is ActionType.RECALL else None
    return Decision(
        action=action,
        reasoning=reasoning if isinstance(reasoning, str) else None,
        depth=depth,
        tool_name=call.name,
        arguments=arguments,
    )


def _arguments(call: ToolCall) -> tuple[dict[str, Any] | None, str | None]:
    raw = call.arguments
    if raw is None:
        return {}, None
    if isinstance(raw, dict):
        return raw, None
    if isinstance(raw, str):
        if not raw.strip():
            return {}, None
        try:
            decoded = json.loads(raw)
        except ValueError as exc:
            return None, f"the arguments of {call.name} are not valid JSON ({exc})"
        if isinstance(decoded, dict):
            return decoded, None
        return None, f"the arguments of {call.name} must be a JSON object, got {raw[:100]}"
    return None, f"the arguments of {call.name} must be a JSON object"


def _raw(arguments: Any) -> dict[str, Any] | None:
    """Unusable arguments, kept for the record."""
    if arguments is None:
        return None
    return {"raw": arguments if isinstance(arguments, str) else repr(arguments)}


def _depth(value: Any) -> int | None:
    """Recall depth as an integer; anything else is left for the rules to refuse clearly."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


# --- the opening message ----------------------------------------------------------------


def goal_sentence(goal_rule: str) -> str:
    if goal_rule == "reached":
        return "find the goal tile (shown as GOAL in what you see) and step onto it."
    return (
        "find the goal tile; it shows as GOAL in what you see, and the run ends once it is in view."
    )


def opening_message(
    prompt: PromptSpec, observation: Observation, history: Sequence[ActionRecord]
) -> str:
    """Oriole's per-turn wrapper, fixed: a real goal, real vision in the history."""
    rules = observation.rules
    position = observation.position
    lines = [
        "You are continuing a grid exploration experiment.",
        "",
        f"The maze is {observation.width} tiles wide and {observation.height} tiles high; "
        "x grows to the east, y grows to the south, (0, 0) is the north-west corner.",
        f"Your current position: ({position.x}, {position.y})",
        f"Goal: {goal_sentence(observation.goal_rule)}",
        f"You see: {describe_vision(observation.vision)}",
        "",
        (prompt.text or "").strip(),
    ]
    past = exploration_history(history, rules.history_actions)
    if past:
        lines += [
            "",
            f"YOUR EXPLORATION HISTORY (last {len(past)} actions):",
            *past,
            "",
            "Use this history to avoid repeating failed moves and to build a map in your head.",
        ]
    lines += [
        "",
        "Act by calling the tools; every move answers with your new position and what you "
        "see from there.",
    ]
    return "\n".join(lines)


# --- the context window ----------------------------------------------------------------


def conversation_chars(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> int:
    total = sum(len(t.name) + len(t.description) + len(json.dumps(t.parameters)) for t in tools)
    for message in messages:
        total += len(message.content)
        for call in message.tool_calls:
            total += len(call.name) + len(json.dumps(call.arguments, default=str))
    return total


def estimate_tokens(
    messages: Sequence[Message], tools: Sequence[ToolSpec], chars_per_token: float
) -> int:
    chars = conversation_chars(messages, tools)
    return math.ceil(chars / chars_per_token) + MESSAGE_OVERHEAD_TOKENS * (len(messages) + 1)


def fit_context(
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    *,
    context_window: int | None,
    reply_reserve: int,
    chars_per_token: float,
) -> tuple[list[Message], int]:
    """The conversation trimmed to fit, and how many tool results are trimmed in it.

    The oldest tool results are replaced by a short note first (their calls stay, so every
    provider still sees each call answered). If the opening message, the assistant turns and
    the note-only results still do not fit, the call cannot be made honestly:
    `ContextOverflow`.
    """
    fitted = list(messages)
    trimmed = sum(1 for m in fitted if m.role == "tool" and m.content == TRIMMED_NOTE)
    if context_window is None:
        return fitted, trimmed
    budget = context_window - reply_reserve
    index = 0
    while estimate_tokens(fitted, tools, chars_per_token) > budget:
        while index < len(fitted) and not (
            fitted[index].role == "tool" and fitted[index].content != TRIMMED_NOTE
        ):
            index += 1
        if index >= len(fitted):
            needed = estimate_tokens(fitted, tools, chars_per_token) + reply_reserve
            raise ContextOverflow(
                f"the conversation needs about {needed} tokens (with {reply_reserve} kept for "
                f"the reply) but num_ctx is {context_window}, even with every older tool "
                "result removed; raise agent.options.num_ctx or lower rules.history_actions"
            )
        old = fitted[index]
        fitted[index] = Message(
            "tool", TRIMMED_NOTE, tool_call_id=old.tool_call_id, tool_name=old.tool_name
        )
        trimmed += 1
    return fitted, trimmed
