"""The LLM turn loop, played against the real rules and fold with scripted model replies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from oriole.agents.base import Decision, Observation
from oriole.events import ActionCompleted, ModelCalled, RunFinished
from oriole.experiment import (
    AgentSpec,
    ExperimentStart,
    GameRules,
    MazeData,
    ModelOptions,
    PromptSpec,
    RunLimits,
)
from oriole.intents import ActionType, RetryRecord
from oriole.llm.chat import Message, ModelReply, ToolCall
from oriole.llm.errors import ContextOverflow
from oriole.llm.tools import TOOLS
from oriole.llm.turn import (
    TRIMMED_NOTE,
    CallInfo,
    ModelNeeded,
    TurnLoop,
    fit_context,
    tool_call_decision,
)
from oriole.local_run import LocalRun, ManualClock, counting_ids
from oriole.schema_base import Point
from tests.support import maze_from_text

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PROMPT = PromptSpec(version="test-v1", text="Explore the maze carefully and find the goal.")

# The goal sits far east behind a corridor, out of view from the start.
MAZE = maze_from_text(
    """
    ##############
    #............#
    #.##########.#
    #.#........#.#
    #.#.######.#.#
    #...#......#G#
    ##############
    """
)


def new_run(
    *,
    options: ModelOptions | None = None,
    per_turn: int = 50,
    history: int = 20,
    goal_rule: str = "seen",
) -> tuple[LocalRun, TurnLoop]:
    agent = AgentSpec(provider="ollama", model="qwen2.5:7b", options=options or ModelOptions())
    request = ExperimentStart(
        run_id="run-llm",
        requested_at=T0,
        maze=MazeData.from_maze(MAZE),
        start=Point(x=1, y=1),
        agent=agent,
        prompt=PROMPT,
        rules=GameRules(max_actions_per_turn=per_turn, history_actions=history),
        limits=RunLimits.model_validate({"goal_rule": goal_rule, "max_actions": 200}),
    )
    run = LocalRun(request, MAZE, clock=ManualClock(T0), new_id=counting_ids())
    return run, TurnLoop(agent, PROMPT)


def observe(run: LocalRun) -> Observation:
    return Observation.from_state(run.state)


def reply(
    *calls: tuple[str, Any],
    content: str = "",
    tokens: tuple[int | None, int | None] = (100, 20),
) -> ModelReply:
    tool_calls = tuple(ToolCall(f"c{i}", name, args) for i, (name, args) in enumerate(calls))
    return ModelReply(
        message=Message("assistant", content, tool_calls),
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        done_reason="stop",
    )


def info(n: int = 1) -> CallInfo:
    return CallInfo(call_id=f"call-{n}", endpoint="http://ollama-a:11434", cost_usd=0.5)


def send(run: LocalRun, decision: Decision, observation: Observation) -> None:
    run.send(decision.to_intent(run.state.run_id, observation.basis_seq, observation.turn))


def step(run: LocalRun, loop: TurnLoop, answer: ModelReply | None = None) -> Decision:
    """One decision: from the queue, or from ``answer`` if the loop asks the model."""
    observation = observe(run)
    asked = loop.next_step(observation, run.state.actions)
    if isinstance(asked, ModelNeeded):
        assert answer is not None, "the loop asked the model but the test gave no reply"
        decision = loop.on_reply(answer, info(), observation)
    else:
        assert answer is None, "the loop had a queued call but the test gave a reply"
        decision = asked
    send(run, decision, observation)
    return decision


def move(direction: str, why: str = "exploring") -> tuple[str, Any]:
    return (f"move_{direction}", {"reasoning": why})


def test_opening_message_has_position_goal_vision_prompt_and_real_history() -> None:
    run, loop = new_run(history=2)
    first = loop.next_step(observe(run), run.state.actions)
    assert isinstance(first, ModelNeeded)
    text = first.request.messages[0].content
    assert first.request.messages[0].role == "user"
    assert "Your current position: (1, 1)" in text
    assert "Goal: find the goal tile" in text and "undefined" not in text
    assert "You see: " in text and PROMPT.text in text
    assert "14 tiles wide and 7 tiles high" in text
    assert "HISTORY" not in text  # nothing happened yet
    assert [t.name for t in first.request.tools] == [t.name for t in TOOLS]
    step(run, loop, reply(move("east"), move("east"), move("south")))
    step(run, loop)
    step(run, loop)
    loop.turn = None  # force a new turn
    second = loop.next_step(observe(run), run.state.actions)
    assert isinstance(second, ModelNeeded)
    text = second.request.messages[0].content
    assert "YOUR EXPLORATION HISTORY (last 2 actions):" in text
    assert "✓ move_east → (3, 1): Saw" in text
    assert "✗ move_south → (3, 1): Saw" in text
    assert "Vision data parse error" not in text and "(null, null)" not in text


def test_tool_calls_of_one_reply_run_in_order_with_usage_on_the_first_only() -> None:
    run, loop = new_run()
    first = step(run, loop, reply(move("east", "a"), move("east", "b"), move("west", "c")))
    assert first.model_call is not None and first.model_call.tool_calls == 3
    assert first.model_call.input_tokens == 100 and first.model_call.output_tokens == 20
    assert first.model_call.endpoint == "http://ollama-a:11434"
    assert first.new_turn and first.reasoning == "a"
    second = step(run, loop)
    third = step(run, loop)
    assert (second.reasoning, third.reasoning) == ("b", "c")
    assert second.model_call is None and third.model_call is None
    assert not second.new_turn and not third.new_turn
    turns = [a.turn for a in run.state.actions]
    assert turns == [1, 1, 1]
    # The next call continues the conversation with one answer per call, in order.
    asked = loop.next_step(observe(run), run.state.actions)
    assert isinstance(asked, ModelNeeded)
    roles = [m.role for m in asked.request.messages]
    assert roles == ["user", "assistant", "tool", "tool", "tool"]
    answers = asked.request.messages[2:]
    assert [m.tool_call_id for m in answers] == ["c0", "c1", "c2"]
    assert json.loads(answers[0].content)["position"] == {"x": 2, "y": 1}
    assert json.loads(answers[2].content)["position"] == {"x": 2, "y": 1}
    called = [e for e in run.events if isinstance(e, ModelCalled)]
    assert len(called) == 1 and called[0].payload.call_id == "call-1"


def test_a_reply_without_tool_calls_ends_the_turn_and_the_next_turn_starts_fresh() -> None:
    run, loop = new_run()
    step(run, loop, reply(move("east")))
    thinking = step(run, loop, reply(content="I should think about this maze first."))
    assert thinking.action is ActionType.NO_TOOL_CALL and not thinking.new_turn
    assert thinking.assistant_message == "I should think about this maze first."
    assert thinking.model_call is not None
    asked = loop.next_step(observe(run), run.state.actions)
    assert isinstance(asked, ModelNeeded)
    assert [m.role for m in asked.request.messages] == ["user"]
    nxt = loop.on_reply(reply(move("east")), info(3), observe(run))
    assert nxt.new_turn
    send(run, nxt, observe(run))
    assert [a.turn for a in run.state.actions] == [1, 1, 2]


def test_the_turn_ends_at_the_action_cap_and_the_rest_of_the_reply_is_dropped() -> None:
    run, loop = new_run(per_turn=2)
    first = step(run, loop, reply(move("east"), move("east"), move("east"), move("east")))
    step(run, loop)
    assert first.model_call is not None and first.model_call.tool_calls == 4
    asked = loop.next_step(observe(run), run.state.actions)
    assert isinstance(asked, ModelNeeded)
    assert len(asked.request.messages) == 1  # a new turn, not the third queued call
    assert run.state.tally.actions == 2


def test_the_turn_ends_when_the_goal_comes_into_view() -> None:
    # Under the "reached" rule the run goes on after the goal is seen; the turn does not.
    run, loop = new_run(goal_rule="reached")
    path = ["east"] * 11 + ["south"] * 3
    step(run, loop, reply(*[move(d) for d in path]))
    for _ in range(len(path) - 1):
        if run.state.finished is not None:
            break
        asked = loop.next_step(observe(run), run.state.actions)
        if isinstance(asked, ModelNeeded):
            break
        send(run, asked, observe(run))
    assert run.state.tally.goal_seen
    assert run.state.finished is None
    asked = loop.next_step(observe(run), run.state.actions)
    assert isinstance(asked, ModelNeeded) and len(asked.request.messages) == 1
    assert run.state.tally.actions < len(path)


def test_a_run_moved_on_without_the_agent_starts_a_new_turn() -> None:
    run, loop = new_run()
    step(run, loop, reply(move("east"), move("east")))
    run.act(ActionType.MOVE_WEST, turn=1)  # someone else's decision (a takeover)
    asked = loop.next_step(observe(run), run.state.actions)
    assert isinstance(asked, ModelNeeded) and len(asked.request.messages) == 1


@pytest.mark.parametrize(
    ("arguments", "action", "problem"),
    [
        ({"reasoning": "go"}, ActionType.MOVE_NORTH, None),
        ('{"reasoning": "go"}', ActionType.MOVE_NORTH, None),
        ("", ActionType.MOVE_NORTH, None),
        (None, ActionType.MOVE_NORTH, None),
        ('{"reasoning": "go"', ActionType.INVALID_TOOL_CALL, "not valid JSON"),
        ("[1, 2]", ActionType.INVALID_TOOL_CALL, "must be a JSON object"),
        (42, ActionType.INVALID_TOOL_CALL, "must be a JSON object"),
    ],
)
def test_tool_call_arguments_as_object_string_or_garbage(
    arguments: Any, action: ActionType, problem: str | None
) -> None:
    decision = tool_call_decision(ToolCall("x", "move_north", arguments))
    assert decision.action is action
    if problem is None:
        assert decision.problem is None
    else:
        assert decision.problem is not None and problem in decision.problem
        assert decision.tool_name == "move_north"


def test_unknown_tools_and_recall_depths() -> None:
    unknown = tool_call_decision(ToolCall("x", "teleport", {"to": "goal"}))
    assert unknown.action is ActionType.INVALID_TOOL_CALL
    assert unknown.problem is not None and "teleport" in unknown.problem
    assert "move_north" in unknown.problem
    for depth, expected in [(25, 25), ("50", 50), (10.0, 10), ("lots", None), (True, None)]:
        recall = tool_call_decision(
            ToolCall("x", "recall_movement_history", {"depth": depth, "reasoning": "r"})
        )
        assert recall.action is ActionType.RECALL and recall.depth == expected


def test_an_invalid_call_is_recorded_and_the_model_is_told_why() -> None:
    run, loop = new_run()
    bad = step(run, loop, reply(("move_north", '{"reasoning": '), move("east")))
    assert bad.action is ActionType.INVALID_TOOL_CALL
    outcome = next(e for e in run.events if isinstance(e, ActionCompleted))
    assert not outcome.payload.success and "not valid JSON" in outcome.payload.message
    step(run, loop)
    asked = loop.next_step(observe(run), run.state.actions)
    assert isinstance(asked, ModelNeeded)
    told = json.loads(asked.request.messages[2].content)
    assert told["success"] is False and "not valid JSON" in told["error"]


def test_usage_not_reported_counts_zero_and_retries_are_kept() -> None:
    run, loop = new_run()
    observation = observe(run)
    loop.next_step(observation, run.state.actions)
    retry = RetryRecord(attempt=1, endpoint="http://a", error_class="ServerError", message="500")
    decision = loop.on_reply(
        reply(move("east"), tokens=(None, None)),
        CallInfo(call_id="c", endpoint="http://b", attempts=2, retries=(retry,), wall_ms=12.5),
        observation,
    )
    call = decision.model_call
    assert call is not None
    assert (call.input_tokens, call.output_tokens, call.attempts) == (0, 0, 2)
    assert call.retries == [retry] and call.duration_ms == 12.5


def _conversation(results: int, size: int) -> list[Message]:
    messages = [Message("user", "u" * 300)]
    for i in range(results):
        messages.append(Message("assistant", "", (ToolCall(f"c{i}", "move_east", {}),)))
        messages.append(Message("tool", "r" * size, tool_call_id=f"c{i}", tool_name="move_east"))
    return messages


def test_fit_context_trims_the_oldest_tool_results_first() -> None:
    messages = _conversation(6, 900)
    fitted, trimmed = fit_context(
        messages, TOOLS, context_window=2500, reply_reserve=256, chars_per_token=3.0
    )
    assert trimmed >= 1
    tool_contents = [m.content for m in fitted if m.role == "tool"]
    assert tool_contents[:trimmed] == [TRIMMED_NOTE] * trimmed
    assert all(c == "r" * 900 for c in tool_contents[trimmed:])
    assert [m.tool_call_id for m in fitted] == [m.tool_call_id for m in messages]
    untouched, none = fit_context(
        messages, TOOLS, context_window=None, reply_reserve=256, chars_per_token=3.0
    )
    assert none == 0 and untouched == messages


def test_a_conversation_that_cannot_fit_is_a_clear_error() -> None:
    with pytest.raises(ContextOverflow, match="num_ctx is 600"):
        fit_context(
            _conversation(2, 900), TOOLS, context_window=600, reply_reserve=256, chars_per_token=3
        )


def test_trimming_is_recorded_on_the_model_call() -> None:
    run, loop = new_run(options=ModelOptions(num_ctx=2600, max_output_tokens=200))
    step(run, loop, reply(*[move("east") for _ in range(8)]))
    trimmed_calls = []
    for _ in range(30):
        if run.state.finished is not None:
            break
        observation = observe(run)
        asked = loop.next_step(observation, run.state.actions)
        if isinstance(asked, ModelNeeded):
            decision = loop.on_reply(
                reply(move("west"), move("east")),
                info(),
                observation,
                context_trimmed=asked.context_trimmed,
            )
            assert decision.model_call is not None
            trimmed_calls.append(decision.model_call.context_trimmed)
        else:
            decision = asked
        send(run, decision, observation)
    assert trimmed_calls and max(trimmed_calls) > 0
    assert trimmed_calls == sorted(trimmed_calls)  # within a turn trimming only grows


def test_budget_stops_the_run_with_reason_budget() -> None:
    agent = AgentSpec(provider="ollama", model="m")
    request = ExperimentStart(
        run_id="run-budget",
        requested_at=T0,
        maze=MazeData.from_maze(MAZE),
        start=Point(x=1, y=1),
        agent=agent,
        prompt=PROMPT,
        limits=RunLimits(max_tokens=250),
    )
    run = LocalRun(request, MAZE, clock=ManualClock(T0), new_id=counting_ids())
    loop = TurnLoop(agent, PROMPT)
    for _ in range(5):
        if run.state.finished is not None:
            break
        observation = observe(run)
        asked = loop.next_step(observation, run.state.actions)
        decision = (
            loop.on_reply(reply(move("east")), info(), observation)
            if isinstance(asked, ModelNeeded)
            else asked
        )
        send(run, decision, observation)
    finished = run.events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.payload.stop_reason.value == "budget"
    assert finished.payload.input_tokens + finished.payload.output_tokens == 360
