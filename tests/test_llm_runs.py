"""LLM runs end to end: a real broker, a real worker and projector, real PostgreSQL, and fake
model servers speaking the real HTTP wire formats of Ollama, OpenAI and Bedrock Converse."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from oriole.events import ActionCompleted, ActionRequested, ModelCalled, RunEvent, RunFinished
from oriole.generators import generate
from oriole.llm.pricing import load_price_table
from oriole.llm.prompts import DEFAULT_PROMPT_VERSION, load_prompt
from tests.fake_llm import (
    TEST_ACCESS_KEY,
    TEST_REGION,
    TEST_SECRET_KEY,
    FakeBedrock,
    FakeLLMServer,
    FakeOllama,
    FakeOpenAI,
    Hang,
    HttpError,
    NoToolSupport,
    Reply,
)
from tests.kafka_support import (
    Stack,
    TopicReader,
    assert_clean_log,
    eventually,
    finished,
    make_stack,
    publish,
    run_events,
    running_projector,
    running_worker,
    start_event,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

#: A maze big enough that the fake model's wandering does not stumble on the goal at once.
MAZE = generate("backtracker", 31, 31, seed=7).to_dict()

MODELS = {"ollama": "qwen2.5:7b", "openai": "gpt-4o-mini", "bedrock": "amazon.nova-lite-v1:0"}
FAKES: dict[str, type[FakeLLMServer]] = {
    "ollama": FakeOllama,
    "openai": FakeOpenAI,
    "bedrock": FakeBedrock,
}

#: Fast retries, so tests do not wait out production backoff.
QUICK = {
    "llm_backoff_base_seconds": 0.01,
    "llm_backoff_max_seconds": 0.05,
    "llm_retry_after_max_seconds": 0.2,
    "llm_request_timeout_seconds": 30.0,
}


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The standard AWS chain finds the fake's test keys in the environment, nothing else."""
    empty = tmp_path / "aws-empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield


def provider_settings(kind: str, *fakes: FakeLLMServer) -> dict[str, Any]:
    urls = [fake.url for fake in fakes]
    if kind == "ollama":
        return {"ollama_endpoints": urls}
    if kind == "openai":
        return {"openai_endpoints": urls, "openai_api_key": "sk-test-not-a-secret"}
    return {"bedrock_endpoints": urls, "bedrock_region": TEST_REGION}


async def stack_for(
    tmp_path: Path,
    kafka_broker: str,
    topic_prefix: str,
    kind: str,
    *fakes: FakeLLMServer,
    **extra: Any,
) -> Stack:
    overrides = QUICK | provider_settings(kind, *fakes) | extra
    return await make_stack(tmp_path, kafka_broker, topic_prefix, **overrides)


def llm_start(run_id: str, kind: str, *, max_actions: int = 30, **fields: Any) -> bytes:
    agent = {
        "provider": kind,
        "model": MODELS[kind],
        "options": {"temperature": 0.2, "num_ctx": 32768, "max_output_tokens": 512, "top_p": 0.9},
    }
    fields.setdefault("agent", agent)
    fields.setdefault("prompt", {"version": DEFAULT_PROMPT_VERSION})
    fields.setdefault("limits", {"max_actions": max_actions, "max_footsteps": None})
    return start_event(run_id, MAZE, **fields)


async def run_to_end(stack: Stack, start: bytes, run_id: str) -> list[RunEvent]:
    async with TopicReader(stack.bootstrap, stack.topics.runs_events) as reader:
        await publish(stack.bootstrap, stack.topics.experiments_start, start, key=run_id.encode())
        await reader.until(finished([run_id]))
        return run_events(reader.records, run_id)


@pytest_asyncio.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        yield created
    finally:
        await created.close()


def calls_of(events: list[RunEvent]) -> list[ModelCalled]:
    return [e for e in events if isinstance(e, ModelCalled)]


def usage_of(fake: FakeLLMServer) -> tuple[int, int]:
    inputs = sum(i or 0 for i, _ in fake.reported_usage)
    outputs = sum(o or 0 for _, o in fake.reported_usage)
    return inputs, outputs


# --- a full run per provider ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ollama", "openai", "bedrock"])
async def test_a_full_run_with_each_provider_completes_through_kafka(
    kind: str,
    kafka_broker: str,
    topic_prefix: str,
    tmp_path: Path,
    pool: asyncpg.Pool,
    aws_credentials: None,
) -> None:
    quirks = [
        Reply(tool_calls=[("move_east", '{"reasoning": "as a string"}')], arguments_as="string"),
        HttpError(429, "slow down", retry_after="0"),
        Reply(content="Let me think about where the goal could be."),  # no tool call
        HttpError(500, "model runner crashed"),
        Reply(tool_calls=[("move_south", '{"reasoning": "unterminated')], arguments_as="string"),
        Reply(
            tool_calls=[
                ("move_north", {"reasoning": "one"}),
                ("recall_movement_history", {"depth": 5, "reasoning": "where was I"}),
                ("move_west", {"reasoning": "three"}),
            ]
        ),
    ]
    fake = FAKES[kind](script=quirks, seed=3)
    async with fake:
        stack = await stack_for(tmp_path, kafka_broker, topic_prefix, kind, fake)
        run_id = f"llm-{kind}-{uuid.uuid4().hex[:8]}"
        async with running_worker(stack), running_projector(stack, pool):
            events = await run_to_end(stack, llm_start(run_id, kind), run_id)
            assert_clean_log(events)
            end = events[-1]
            assert isinstance(end, RunFinished)
            assert end.payload.stop_reason.value in ("max_actions", "goal_seen"), end.payload
            assert end.payload.error is None

            actions = [e.payload for e in events if isinstance(e, ActionRequested)]
            kinds = [a.action.value for a in actions]
            assert kinds[0] == "move_east" and actions[0].arguments == {"reasoning": "as a string"}
            assert kinds[1] == "no_tool_call"
            assert actions[1].assistant_message == "Let me think about where the goal could be."
            assert kinds[2] == "invalid_tool_call" and "not valid JSON" in (
                actions[2].problem or ""
            )
            assert kinds[3:6] == ["move_north", "recall_movement_history", "move_west"]
            # The three calls of one reply share one model call; the next turn is a new turn.
            assert actions[3].call_id is not None
            assert actions[4].call_id is None and actions[5].call_id is None
            assert actions[3].turn == actions[4].turn == actions[5].turn
            assert actions[1].turn == actions[0].turn and actions[2].turn == actions[1].turn + 1

            calls = calls_of(events)
            # One model.called per successful reply the server sent, usage exactly as reported.
            assert len(calls) == len(fake.reported_usage)
            assert [(c.payload.input_tokens, c.payload.output_tokens) for c in calls] == [
                (i or 0, o or 0) for i, o in fake.reported_usage
            ]
            retried = [r for c in calls for r in c.payload.retries]
            assert [r.error_class for r in retried] == ["RateLimited", "ServerError"]
            assert [c.payload.attempts for c in calls[1:3]] == [2, 2]
            assert all(
                c.payload.provider == kind and c.payload.model == MODELS[kind] for c in calls
            )
            assert all(c.payload.endpoint == fake.url for c in calls)

            inputs, outputs = usage_of(fake)
            assert (end.payload.input_tokens, end.payload.output_tokens) == (inputs, outputs)
            assert end.payload.model_calls == len(calls)
            price = load_price_table(None).price(kind, MODELS[kind])
            expected_cost = (
                sum(
                    Decimal(str(price.cost(c.payload.input_tokens, c.payload.output_tokens)))
                    for c in calls
                )
                if price is not None
                else Decimal(0)
            )
            assert sum(Decimal(str(c.payload.cost_usd)) for c in calls) == expected_cost
            if kind != "ollama":
                assert expected_cost > 0

            # What the server received: the options, the tools, the full prompt text.
            first = fake.chat_requests[0].body
            prompt_text = load_prompt(DEFAULT_PROMPT_VERSION).text
            assert prompt_text is not None and prompt_text.strip()[:60] in json.dumps(first)
            assert "undefined" not in json.dumps(first)
            if kind == "ollama":
                assert first["options"]["temperature"] == 0.2
                assert first["options"]["num_ctx"] == 32768 and first["stream"] is False
            elif kind == "openai":
                assert first["temperature"] == 0.2 and first["max_tokens"] == 512
                auth = fake.chat_requests[0].header("authorization")
                assert auth == "Bearer sk-test-not-a-secret"
            else:
                assert first["inferenceConfig"]["temperature"] == 0.2
                assert fake.signature_ok and all(fake.signature_ok)

            async def projected() -> bool:
                row = await pool.fetchrow(
                    "SELECT status, input_tokens, output_tokens, cost_usd, model_calls"
                    " FROM experiments WHERE run_id = $1",
                    run_id,
                )
                return row is not None and row["status"] != "running"

            await eventually(projected)
            row = await pool.fetchrow(
                "SELECT input_tokens, output_tokens, cost_usd, model_calls FROM experiments"
                " WHERE run_id = $1",
                run_id,
            )
            sums = await pool.fetchrow(
                "SELECT count(*) AS n, sum(input_tokens) AS i, sum(output_tokens) AS o,"
                " sum(cost_usd) AS c FROM model_calls WHERE run_id = $1",
                run_id,
            )
        assert (row["input_tokens"], row["output_tokens"]) == (inputs, outputs)
        assert (sums["i"], sums["o"], sums["n"]) == (inputs, outputs, len(calls))
        assert row["cost_usd"] == sums["c"] == expected_cost.quantize(Decimal("1e-10"))


# --- failures end the run with the error ------------------------------------------------------


async def test_a_model_without_tool_support_fails_the_run_with_a_clear_error(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    async with FakeOllama(script=[NoToolSupport()]) as fake:
        stack = await stack_for(tmp_path, kafka_broker, topic_prefix, "ollama", fake)
        run_id = f"no-tools-{uuid.uuid4().hex[:8]}"
        async with running_worker(stack):
            events = await run_to_end(stack, llm_start(run_id, "ollama"), run_id)
    assert_clean_log(events)
    end = events[-1]
    assert isinstance(end, RunFinished) and end.payload.stop_reason.value == "failed"
    assert end.payload.error is not None
    assert end.payload.error.error_class == "ToolsUnsupported"
    assert "does not support tools" in end.payload.error.message
    assert len(fake.chat_requests) == 1  # not retried: trying again cannot help


async def test_a_hanging_server_is_aborted_and_the_run_fails_after_bounded_retries(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    async with FakeOpenAI(script=[Hang(), Hang(), Hang()]) as fake:
        stack = await stack_for(
            tmp_path,
            kafka_broker,
            topic_prefix,
            "openai",
            fake,
            llm_request_timeout_seconds=0.5,
            llm_max_attempts=3,
        )
        run_id = f"hang-{uuid.uuid4().hex[:8]}"
        async with running_worker(stack):
            events = await run_to_end(stack, llm_start(run_id, "openai"), run_id)
    end = events[-1]
    assert isinstance(end, RunFinished) and end.payload.stop_reason.value == "failed"
    assert end.payload.error is not None
    assert "timeout" in (end.payload.error.error_class + end.payload.error.message).lower()
    calls = calls_of(events)
    assert len(calls) == 1 and calls[0].payload.attempts == 3
    assert [r.error_class for r in calls[0].payload.retries] == ["RequestTimeout"] * 3
    assert calls[0].payload.input_tokens == 0
    assert len(fake.chat_requests) == 3


# --- two Ollama endpoints, one killed mid-run -------------------------------------------------


async def test_two_ollama_endpoints_one_killed_mid_run_fails_over_and_the_breaker_recovers(
    kafka_broker: str, topic_prefix: str, tmp_path: Path
) -> None:
    first, second = FakeOllama(seed=1), FakeOllama(seed=2)
    async with first, second:
        stack = await stack_for(
            tmp_path,
            kafka_broker,
            topic_prefix,
            "ollama",
            first,
            second,
            llm_breaker_failure_threshold=2,
            llm_breaker_reset_seconds=0.5,
            llm_health_check_interval_seconds=0.1,
            llm_connect_timeout_seconds=2.0,
        )
        run_id = f"failover-{uuid.uuid4().hex[:8]}"
        async with (
            running_worker(stack) as worker,
            TopicReader(stack.bootstrap, stack.topics.runs_events) as reader,
        ):
            start = llm_start(run_id, "ollama", max_actions=400)
            await publish(stack.bootstrap, stack.topics.experiments_start, start, run_id.encode())

            async def some_calls() -> bool:
                return len(first.chat_requests) + len(second.chat_requests) >= 3

            await eventually(some_calls)
            busy, spare = (first, second) if first.chat_requests else (second, first)
            assert not spare.chat_requests  # the run sticks to one endpoint
            await busy.stop()
            served_before = len(spare.chat_requests)

            async def spare_serves() -> bool:
                return len(spare.chat_requests) >= served_before + 3

            await eventually(spare_serves)
            pool = await worker.agents.pool("ollama")

            def breaker(url: str) -> str:
                return next(s.state for s in pool.status() if s.url == url)

            async def opened() -> bool:
                return breaker(busy.url) == "open"

            await eventually(opened)
            await busy.start(port=busy.port)

            async def closed() -> bool:
                return breaker(busy.url) == "closed"

            await eventually(closed)
            await reader.until(finished([run_id]))
            events = run_events(reader.records, run_id)
    assert_clean_log(events)
    end = events[-1]
    assert isinstance(end, RunFinished) and end.payload.stop_reason.value == "max_actions"
    endpoints = {c.payload.endpoint for c in calls_of(events)}
    assert spare.url in endpoints and busy.url in endpoints
    failed_over = [r for c in calls_of(events) for r in c.payload.retries]
    assert all(r.endpoint == busy.url for r in failed_over)
    completed = [e for e in events if isinstance(e, ActionCompleted)]
    assert len(completed) == 400
