"""The LLM agent: the pure turn loop wired to a provider's endpoint pool."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence

from oriole.agents.base import AgentFailed, Decision, Observation
from oriole.experiment import AgentSpec, PromptSpec
from oriole.intents import ModelCall
from oriole.llm.errors import ProviderError
from oriole.llm.pricing import Price
from oriole.llm.turn import CallInfo, TurnLoop
from oriole.memory import ActionRecord
from oriole.redaction import Redactor
from oriole.telemetry import model_call_spans
from providers.transport import EndpointPool

log = logging.getLogger("oriole.providers.agent")

PoolSource = Callable[[], Awaitable[EndpointPool]]


class LLMAgent:
    """Plays one run; the runner keeps one instance per run (the turn lives in memory)."""

    def __init__(
        self,
        spec: AgentSpec,
        prompt: PromptSpec,
        pool: PoolSource,
        price: Price | None,
        *,
        new_call_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        redactor: Redactor | None = None,
    ) -> None:
        self.name = f"{spec.provider}:{spec.model}"
        self.spec = spec
        self.price = price
        self.turns = TurnLoop(spec, prompt)
        self._pool = pool
        self._new_call_id = new_call_id
        #: The pool redacts upstream text already; this guards the failure text once more
        #: (it becomes the run's terminal event), whatever raised it.
        self._redact = redactor or Redactor()

    async def decide(self, observation: Observation, history: Sequence[ActionRecord]) -> Decision:
        try:
            step = self.turns.next_step(observation, history)
        except ProviderError as exc:  # the context cannot fit: no call is made
            raise AgentFailed(type(exc).__name__, self._redact(exc.message)) from exc
        if isinstance(step, Decision):
            return step
        pool = await self._pool()
        call_id = self._new_call_id()
        try:
            call = pool.chat(step.request, affinity=observation.run_id, endpoint=self.spec.endpoint)
            result = await model_call_spans.model_call(call, self.spec.provider, self.spec.model)
        except ProviderError as exc:
            failed = ModelCall(
                call_id=call_id,
                provider=self.spec.provider,
                model=self.spec.model,
                attempts=exc.attempts,
                endpoint=exc.endpoint,
                context_trimmed=step.context_trimmed,
                retries=list(exc.retries),
            )
            raise AgentFailed(type(exc).__name__, self._redact(exc.message), failed) from exc
        reply = result.reply
        if reply.input_tokens is None or reply.output_tokens is None:
            log.warning(
                "%s did not report token usage for run %s; counted as 0",
                pool.wire.provider,
                observation.run_id,
                extra={"run_id": observation.run_id},
            )
        cost = 0.0
        if self.price is not None:
            cost = self.price.cost(reply.input_tokens or 0, reply.output_tokens or 0)
        info = CallInfo(
            call_id=call_id,
            endpoint=result.endpoint,
            attempts=result.attempts,
            retries=result.retries,
            wall_ms=result.wall_ms,
            cost_usd=cost,
        )
        return self.turns.on_reply(reply, info, observation, context_trimmed=step.context_trimmed)
