"""`oriole up`, `oriole worker` and `oriole run`: the stack and experiments on it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Generic, Protocol, TypeVar

import pydantic
import typer
from pydantic import BaseModel
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.server import Gateway
from oriole import generators
from oriole.admission import Admitted, admit
from oriole.agents.builtin import BUILTIN_AGENTS
from oriole.backoff import Backoff
from oriole.cli.common import catalogue, console, err_console, parse_point, print_json, settings
from oriole.cli.follower import RunEnded, RunFollower, publish_start
from oriole.environment.logs import configure_logging
from oriole.environment.settings import Settings
from oriole.environment.stack_file import (
    Connection,
    StackInfo,
    clean_stale_stack,
    connection,
    remove_stack,
    write_stack,
)
from oriole.errors import OrioleError, ValidationError
from oriole.events import ActionCompleted, RunEvent, RunStarted
from oriole.experiment import (
    AgentSpec,
    ExperimentStart,
    GameRules,
    MazeData,
    ModelOptions,
    RunLimits,
)
from oriole.kafka import EmbeddedBroker, ensure_topics, prepare_clients, wait_for_broker
from oriole.kafka.rdkafka_bridge import RdkafkaBridge
from oriole.kafka.topics import Topics
from oriole.llm.pricing import bedrock_base_id, load_price_table
from oriole.llm.prompts import is_released, normalise_prompt, prompt_versions
from oriole.schema_base import field_problems, new_run_id
from projections.database import Database, open_database, redact
from projections.projector import Projector
from projections.replay_source import republish_unstarted_requests, restore_unfinished_runs
from providers.factory import allowed_endpoints
from streams.worker import Worker

log = logging.getLogger("oriole.cli")

DEMO_MAZE = "demo-backtracker-41x41"


async def _until_signalled(
    main: Callable[[asyncio.Event], Awaitable[None]], grace: float = 15.0
) -> None:
    """Run ``main(stop)``; SIGINT and SIGTERM set ``stop`` for a clean shutdown.

    A clean shutdown may wait for a broker that is gone: after ``grace`` seconds, or at a
    second signal, ``main`` is cancelled, so a signal is always obeyed.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main(stop))

    def signalled() -> None:
        if stop.is_set():
            log.warning("second signal: stopping now")
            task.cancel()
            return
        stop.set()
        loop.call_later(grace, task.cancel)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signalled)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


# --- oriole up ------------------------------------------------------------------------------


def up(
    demo: Annotated[
        bool, typer.Option("--demo", help="Also run a demo experiment and show its progress.")
    ] = False,
) -> None:
    """Start the broker (embedded unless configured) and a worker; Ctrl-C stops everything."""
    current = settings()
    configure_logging(current)
    # Stopping drains the projector (up to 20 s) before the broker goes: a longer grace.
    asyncio.run(_until_signalled(lambda stop: _up(current, stop, demo), grace=60.0))


async def _up(current: Settings, stop: asyncio.Event, demo: bool) -> None:
    broker: EmbeddedBroker | None = None
    bridge: RdkafkaBridge | None = None
    home = current.home
    clean_stale_stack(home)  # left by an `oriole up` killed with -9 (logged)
    try:
        if current.embedded_broker:
            broker = EmbeddedBroker(log_dir=current.log_dir)
            await broker.start_async()
            bootstrap = broker.bootstrap_servers
            # librdkafka clients (kcat, confluent-kafka) cannot talk to Tansu directly.
            bridge = await RdkafkaBridge("127.0.0.1", broker.port).start()
        else:
            bootstrap = current.kafka_bootstrap_servers
        tansu = broker is not None or current.tansu_broker
        prepare_clients(tansu, faust=False)
        topics = Topics.from_settings(current)
        await wait_for_broker(bootstrap)
        await ensure_topics(bootstrap, topics.specs)
        async with open_database(current) as db:
            gateway = Gateway(
                current, bootstrap_servers=bootstrap, topics=topics, pool=db.pool, tansu=tansu
            )
            try:
                await gateway.start()
            except OSError as exc:
                raise OrioleError(
                    f"the gateway cannot listen on {current.gateway_host}:"
                    f"{current.gateway_port} ({exc.strerror or exc}); is another `oriole up` "
                    "running? Choose another port with ORIOLE_GATEWAY_PORT"
                ) from exc
            try:
                await _serve(
                    current, stop, demo, broker, bridge, bootstrap, tansu, topics, db, gateway
                )
            finally:
                await gateway.stop()
    finally:
        remove_stack(home, os.getpid())
        if bridge is not None:
            await bridge.stop()
        if broker is not None:
            await broker.stop_async()
        console.print("Oriole stopped.")


async def _serve(
    current: Settings,
    stop: asyncio.Event,
    demo: bool,
    broker: EmbeddedBroker | None,
    bridge: RdkafkaBridge | None,
    bootstrap: str,
    tansu: bool,
    topics: Topics,
    db: Database,
    gateway: Gateway,
) -> None:
    """Everything that runs once broker, database and gateway are up."""
    info = StackInfo(
        pid=os.getpid(),
        kafka_bootstrap_servers=bootstrap,
        broker_kind="tansu" if tansu else "kafka",
        topic_prefix=topics.prefix,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        rdkafka_bootstrap_servers=None if bridge is None else bridge.bootstrap_servers,
        # Only the embedded server's DSN (no password in it) goes into the file.
        database_url=db.dsn if db.embedded is not None else None,
        gateway_url=gateway.url,
    )
    stack_file = write_stack(current.home, info)
    workers = Supervised("worker", lambda: Worker.create(current, bootstrap, topics))
    projectors = Supervised(
        "projector",
        lambda: Projector(
            bootstrap_servers=bootstrap,
            topics=topics,
            pool=db.pool,
            client_id=current.kafka_client_id,
            batch_size=current.projection_batch_size,
        ),
    )
    if broker is not None:
        conn = Connection(bootstrap, True, topics.prefix)
        restored = await restore_unfinished_runs(db.pool, conn, topics)
        _report("Restored", "unfinished run(s) from the archive", restored)
        requested = await republish_unstarted_requests(db.pool, conn, topics)
        _report("Published again", "start request(s) that never became runs", requested)
    _print_banner(current, info, topics, broker, bridge, db, stack_file)
    worker_stop, projector_stop = asyncio.Event(), asyncio.Event()
    worker_task = asyncio.create_task(workers.run(worker_stop), name="worker")
    projector_task = asyncio.create_task(projectors.run(projector_stop), name="projector")
    demo_task = (
        asyncio.create_task(_demo(current, workers.current, info), name="demo") if demo else None
    )
    await stop.wait()
    if demo_task is not None:
        demo_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await demo_task
    # Workers first, then let the projector archive what they wrote: with the
    # embedded broker, whatever is not archived now is gone.
    worker_stop.set()
    try:
        await worker_task
    finally:
        if not projector_task.done():
            await projectors.current.drain(timeout=20)
        projector_stop.set()
        await projector_task


def _report(verb: str, what: str, run_ids: list[str]) -> None:
    if run_ids:
        shown = ", ".join(run_ids[:5]) + (" ..." if len(run_ids) > 5 else "")
        console.print(f"{verb} {len(run_ids)} {what}: {shown}")


class _Service(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


S = TypeVar("S", bound=_Service)


class Supervised(Generic[S]):
    """One service of `oriole up`, started again if it fails: it never takes the stack down.

    A service that raises (whatever the cause) is logged with its traceback and replaced by
    a fresh instance after a capped exponential backoff, while the broker, the database and
    the other services go on; with the embedded broker, stopping the stack would lose every
    run in flight.
    """

    def __init__(self, name: str, create: Callable[[], S], *, first_delay: float = 1.0) -> None:
        self.name = name
        self.create = create
        self.current: S = create()
        self.first_delay = first_delay
        self.restarts = 0

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(first=self.first_delay, cap=SUPERVISOR_MAX_DELAY)
        while not stop.is_set():
            try:
                await self.current.run(stop)
            except Exception:
                delay = backoff.next_delay()
                log.exception("the %s failed; starting it again in %.1f s", self.name, delay)
            else:
                if stop.is_set():
                    return
                delay = backoff.next_delay()
                log.error("the %s stopped by itself; starting it again in %.1f s", self.name, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            self.restarts += 1
            self.current = self.create()


#: Longest wait before a failed service of `oriole up` is started again.
SUPERVISOR_MAX_DELAY = 30.0


def _print_banner(
    current: Settings,
    info: StackInfo,
    topics: Topics,
    broker: EmbeddedBroker | None,
    bridge: RdkafkaBridge | None,
    db: Database,
    stack_file: Path,
) -> None:
    table = Table.grid(padding=(0, 2))
    kind = "embedded Tansu, memory only" if broker else "configured"
    table.add_row("Kafka", f"{info.kafka_bootstrap_servers} ({kind})")
    if bridge is not None:
        table.add_row("Kafka for kcat", f"{bridge.bootstrap_servers} (librdkafka clients)")
    table.add_row("Topics", f"{topics.prefix}.* ({topics.partitions} partitions each)")
    table.add_row("Start events", topics.experiments_start)
    table.add_row("Run events", topics.runs_events)
    if db.embedded is not None:
        table.add_row("PostgreSQL", f"embedded, data in {db.embedded.data_dir}")
    else:
        table.add_row("PostgreSQL", redact(db.dsn))
    table.add_row("Viewer", f"{info.gateway_url}/  (live runs, replay, read API)")
    table.add_row("SQL", 'psql "$(oriole db url)"  (tables and views: docs/views.md)')
    table.add_row("Home", str(current.home))
    table.add_row("Stack file", str(stack_file))
    if broker is not None and broker.log_path is not None:
        table.add_row("Broker log", str(broker.log_path))
    console.print(Panel(table, title="Oriole is up", subtitle="Ctrl-C to stop"))


async def _demo(current: Settings, worker: Worker, info: StackInfo) -> None:
    await worker.wait_ready()
    library = catalogue()
    try:
        maze = library.get(DEMO_MAZE)
    except ValidationError:
        maze = generators.generate("backtracker", 41, 41, seed=1, name=DEMO_MAZE, density=0.3)
        library.add(maze)
    request = ExperimentStart(
        maze=MazeData.from_maze(maze),
        agent=AgentSpec(provider="builtin", model="frontier", seed=1),
        comment="demo",
        limits=RunLimits(max_footsteps=2000),
    )
    conn = Connection(info.kafka_bootstrap_servers, info.broker_kind == "tansu", info.topic_prefix)
    console.print(f"Demo: frontier agent on {maze.name} (run {request.run_id})")
    ended = await publish_and_follow(conn, request, show_progress=True, timeout=None)
    _print_summary(ended)
    console.print(
        "The stack keeps running: try `oriole run --maze "
        f"{maze.name} --agent builtin:random --wait` in another terminal."
    )


# --- oriole worker --------------------------------------------------------------------------


def _service_setup() -> tuple[Settings, Connection, Topics]:
    """Settings, logging, the broker to join and its topics, for a long-running service."""
    current = settings()
    configure_logging(current)
    conn = connection(current)
    prepare_clients(conn.tansu, faust=False)
    topics = Topics.from_settings(current)
    return current, conn, Topics(conn.topic_prefix, topics.partitions, topics.replication_factor)


async def _connect(conn: Connection, topics: Topics) -> None:
    await wait_for_broker(conn.bootstrap_servers)
    await ensure_topics(conn.bootstrap_servers, topics.specs)


def worker() -> None:
    """Run one worker (maze processor + agent runner) against the configured Kafka.

    Start several to share the load: they form consumer groups and split the partitions.
    """
    current, conn, topics = _service_setup()

    async def main(stop: asyncio.Event) -> None:
        await _connect(conn, topics)
        log.info("worker connected to %s", conn.bootstrap_servers)
        await Worker.create(current, conn.bootstrap_servers, topics).run(stop)

    asyncio.run(_until_signalled(main))


def projector() -> None:
    """Run one projector: run events into the PostgreSQL archive and projections.

    Start several to share the load; while PostgreSQL is down they wait and catch up later.
    """
    current, conn, topics = _service_setup()

    async def main(stop: asyncio.Event) -> None:
        await _connect(conn, topics)
        async with open_database(current) as db:
            log.info("projector connected to %s and %s", conn.bootstrap_servers, redact(db.dsn))
            await Projector(
                bootstrap_servers=conn.bootstrap_servers,
                topics=topics,
                pool=db.pool,
                client_id=current.kafka_client_id,
                batch_size=current.projection_batch_size,
            ).run(stop)

    asyncio.run(_until_signalled(main))


def gateway() -> None:
    """Run the websocket/HTTP gateway (viewer, live feeds, read API) on its own.

    It reads the archive and tails the run events topic; start several behind a load
    balancer if one is not enough (each tails the topic on its own).
    """
    current, conn, topics = _service_setup()

    async def main(stop: asyncio.Event) -> None:
        await _connect(conn, topics)
        async with open_database(current) as db:
            service = Gateway(
                current,
                bootstrap_servers=conn.bootstrap_servers,
                topics=topics,
                pool=db.pool,
                tansu=conn.tansu,
            )
            await service.run(stop)

    asyncio.run(_until_signalled(main))


# --- oriole run -----------------------------------------------------------------------------

PROVIDERS = ("builtin", "ollama", "openai", "bedrock")
#: Model families Ollama serves (as in Oriole's trigger-by-name script, plus smollm).
_OLLAMA_FAMILIES = ("llama", "qwen", "mistral", "phi", "gemma", "codellama", "deepseek", "smollm")
_OPENAI_PREFIXES = ("gpt-", "o1", "o3", "o4-", "chatgpt-")
_BEDROCK_VENDORS = ("anthropic.", "amazon.", "meta.", "mistral.", "cohere.", "ai21.", "deepseek.")

#: Where each CLI option lands in the start event, to name the option in an error.
_OPTION_FIELDS: dict[str, dict[str, str]] = {
    "options": {
        "temperature": "--temperature",
        "num_ctx": "--num-ctx",
        "max_output_tokens": "--max-output-tokens",
        "repeat_penalty": "--repeat-penalty",
        "top_p": "--top-p",
        "top_k": "--top-k",
        "seed": "--model-seed",
        "keep_alive": "--keep-alive",
    },
    "limits": {
        "max_footsteps": "--max-moves",
        "max_actions": "--max-actions",
        "max_duration_seconds": "--max-minutes",
        "max_tokens": "--max-tokens",
        "max_cost_usd": "--max-cost",
        "loop_revisit_limit": "--loop-limit",
        "goal_rule": "--goal-rule",
    },
    "rules": {
        "vision_range": "--vision-range",
        "max_actions_per_turn": "--max-actions-per-turn",
        "history_actions": "--history-actions",
    },
}


def _infer_provider(model: str) -> str | None:
    """The provider a bare model name obviously belongs to, or None if it is not obvious."""
    if model in BUILTIN_AGENTS:
        return "builtin"
    name = model.lower()
    if bedrock_base_id(name).startswith(_BEDROCK_VENDORS):
        return "bedrock"
    if ":" in name or name.startswith(_OLLAMA_FAMILIES):  # Ollama tags: qwen2.5:7b, gpt-oss:20b
        return "ollama"
    if name.startswith(_OPENAI_PREFIXES):
        return "openai"
    return None


def parse_agent(text: str, seed: int | None = None) -> AgentSpec:
    """``PROVIDER:MODEL`` (``ollama:qwen2.5:7b`` is model ``qwen2.5:7b``) or a bare model name
    whose provider is obvious (``frontier``, ``qwen2.5:7b``, ``gpt-4o-mini``,
    ``us.amazon.nova-lite-v1:0``); ``seed`` is a built-in agent's seed."""
    text = text.strip()
    prefix, sep, rest = text.partition(":")
    if sep and prefix in PROVIDERS:
        provider, model = prefix, rest
        if not model:
            raise ValidationError("--agent", f"no model after {prefix!r}: (e.g. {prefix}:NAME)")
    else:
        inferred = _infer_provider(text)
        if inferred is None:
            raise ValidationError(
                "--agent",
                f"cannot tell which provider serves {text!r}; write PROVIDER:MODEL with "
                f"PROVIDER one of {', '.join(PROVIDERS)} (e.g. ollama:{text})",
            )
        provider, model = inferred, text
    if seed is not None and provider != "builtin":
        raise ValidationError(
            "--seed",
            f"is the seed of the built-in agents; for the {provider} model's sampling seed "
            "use --model-seed",
        )
    return AgentSpec.model_validate({"provider": provider, "model": model, "seed": seed})


def _checked(model: type[BaseModel], values: dict[str, Any], section: str) -> dict[str, Any]:
    """``values`` validated by ``model``; an error names the CLI option, not the field."""
    try:
        return model.model_validate(values).model_dump()
    except pydantic.ValidationError as exc:
        field, reason = field_problems(exc)[0]
        option = _OPTION_FIELDS[section].get(field.split(".")[0], f"{section}.{field}")
        raise ValidationError(option, reason) from None


def _prompt_document(version: str | None, prompt_file: Path | None) -> dict[str, Any] | None:
    """``--prompt`` / ``--prompt-file`` as a start event's prompt (admission adds the text)."""
    if prompt_file is None:
        if version is None:
            return None
        if not is_released(version):
            raise ValidationError(
                "--prompt",
                f"unknown prompt version {version!r}; available: {', '.join(prompt_versions())}"
                " (for your own text give a new name with --prompt-file PATH)",
            )
        return {"version": version}
    if version is None:
        raise ValidationError(
            "--prompt-file", "needs --prompt NAME: a new version name for this text"
        )
    if is_released(version):
        raise ValidationError(
            "--prompt",
            f"{version!r} is a released prompt and released prompts are immutable; give the "
            "text in --prompt-file a new version name",
        )
    try:
        text = prompt_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError("--prompt-file", f"cannot read {prompt_file}: {exc}") from None
    if not text.strip():
        raise ValidationError("--prompt-file", f"{prompt_file} is empty")
    return {"version": version, "text": normalise_prompt(text)}


def run(
    maze: Annotated[str, typer.Option("--maze", "-m", help="Maze file or library name.")],
    agent: Annotated[
        str,
        typer.Option(
            "--agent",
            "-a",
            help="PROVIDER:MODEL (builtin, ollama, openai, bedrock), e.g. ollama:qwen2.5:7b; "
            "a bare name is enough when the provider is obvious (frontier, qwen2.5:7b, "
            "gpt-4o-mini, amazon.nova-lite-v1:0).",
        ),
    ] = "builtin:frontier",
    start: Annotated[str | None, typer.Option("--start", help="Start tile X,Y.")] = None,
    max_moves: Annotated[
        int | None, typer.Option("--max-moves", help="Footsteps (successful moves) limit.")
    ] = None,
    max_actions: Annotated[int | None, typer.Option("--max-actions", help="Actions limit.")] = None,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", help="Wall-clock limit in minutes.")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Token budget (input + output).")
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost", help="Cost budget in USD (needs a price for the model)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of a built-in agent's choices.")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", help="Sampling temperature.")
    ] = None,
    num_ctx: Annotated[
        int | None,
        typer.Option(
            "--num-ctx",
            help="Context window in tokens: sent to Ollama; for every provider the "
            "conversation is trimmed to fit it.",
        ),
    ] = None,
    max_output_tokens: Annotated[
        int | None, typer.Option("--max-output-tokens", help="Tokens per model reply.")
    ] = None,
    repeat_penalty: Annotated[
        float | None,
        typer.Option("--repeat-penalty", help="Repeat penalty (Ollama, llama.cpp, vLLM)."),
    ] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling.")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Top-k sampling.")] = None,
    model_seed: Annotated[
        int | None, typer.Option("--model-seed", help="The model's sampling seed.")
    ] = None,
    keep_alive: Annotated[
        str | None, typer.Option("--keep-alive", help="How long Ollama keeps the model loaded.")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Base URL of the model server.")
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt",
            help="Prompt version (`oriole prompts list`; default v1 for models), or the new "
            "name of the text in --prompt-file.",
        ),
    ] = None,
    prompt_file: Annotated[
        Path | None,
        typer.Option("--prompt-file", help="Your own prompt text; needs --prompt NAME."),
    ] = None,
    comment: Annotated[str | None, typer.Option("--comment", help="Free text label.")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="key=value label; repeatable.")
    ] = None,
    vision_range: Annotated[
        int | None, typer.Option("--vision-range", help="Tiles seen per direction.")
    ] = None,
    max_actions_per_turn: Annotated[
        int | None,
        typer.Option("--max-actions-per-turn", help="Tool calls per model turn (0 = no limit)."),
    ] = None,
    history_actions: Annotated[
        int | None,
        typer.Option("--history-actions", help="Past actions shown in each turn's prompt."),
    ] = None,
    goal_rule: Annotated[
        str | None, typer.Option("--goal-rule", help="seen (default) or reached.")
    ] = None,
    loop_limit: Annotated[
        int | None, typer.Option("--loop-limit", help="Stop when a tile is visited N times.")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Choose the run id (default: generated).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it ends.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    print_event: Annotated[
        bool,
        typer.Option(
            "--print-event", help="Print the start event (one JSON line), publish nothing."
        ),
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Give up waiting after this many seconds.")
    ] = None,
) -> None:
    """Publish an experiment-start event (and with --wait, follow the run to its end)."""
    resolved = catalogue().resolve(maze)
    given: dict[str, dict[str, Any]] = {
        "limits": {
            "max_footsteps": max_moves,
            "max_actions": max_actions,
            "max_duration_seconds": None if max_minutes is None else max_minutes * 60,
            "max_tokens": max_tokens,
            "max_cost_usd": max_cost,
            "goal_rule": goal_rule,
            "loop_revisit_limit": loop_limit,
        },
        "rules": {
            "vision_range": vision_range,
            "max_actions_per_turn": max_actions_per_turn,
            "history_actions": history_actions,
        },
        "options": {
            "temperature": temperature,
            "num_ctx": num_ctx,
            "max_output_tokens": max_output_tokens,
            "repeat_penalty": repeat_penalty,
            "top_p": top_p,
            "top_k": top_k,
            "seed": model_seed,
            "keep_alive": keep_alive,
        },
    }
    # Only what was given: a default stays the model's, so the schema's defaults apply.
    chosen = {key: {k: v for k, v in d.items() if v is not None} for key, d in given.items()}
    labels: dict[str, str] = {}
    for item in label or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError("--label", f"expected key=value, got {item!r}")
        labels[key] = value
    origin = parse_point(start, "--start") if start else None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ValidationError("--endpoint", f"expected an http:// or https:// URL: {endpoint!r}")
    spec = parse_agent(agent, seed)
    agent_doc = spec.model_dump() | {
        "endpoint": endpoint,
        "options": _checked(ModelOptions, chosen["options"], "options"),
    }
    document: dict[str, Any] = {
        "run_id": run_id or new_run_id(),
        "maze": resolved.to_dict(),
        "agent": agent_doc,
        "limits": _checked(RunLimits, chosen["limits"], "limits"),
        "rules": _checked(GameRules, chosen["rules"], "rules"),
        "comment": comment,
        "labels": labels,
    }
    prompt_doc = _prompt_document(prompt, prompt_file)
    if prompt_doc is not None:
        document["prompt"] = prompt_doc
    if origin is not None:
        document["start"] = {"x": origin.x, "y": origin.y}
    prices = load_price_table(settings().price_file)
    verdict = admit(
        document, catalogue().get, prices=prices, endpoints=allowed_endpoints(settings())
    )
    if not isinstance(verdict, Admitted):
        for field, reason in verdict.problems:
            err_console.print(f"[bold red]error:[/] {field}: {reason}", highlight=False)
        raise typer.Exit(2)
    request = verdict.request
    for warning in verdict.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if print_event:
        console.file.write(request.model_dump_json() + "\n")
        return
    start_experiment(request, wait=wait, json_output=json_output, timeout=timeout)


def start_experiment(
    request: ExperimentStart,
    *,
    wait: bool,
    json_output: bool,
    timeout: float | None = None,
    note: str = "",
) -> None:
    """Publish an admitted start event; with ``wait``, follow the run and print its result."""
    conn = connection(settings())
    if not wait:
        asyncio.run(publish_start(conn, request))
        if json_output:
            extra = {"rerun_of": request.rerun_of} if request.rerun_of else {}
            print_json({"run_id": request.run_id, **extra, "published": True})
        else:
            console.print(f"published run [bold]{request.run_id}[/]{note}")
        return
    ended = asyncio.run(
        publish_and_follow(conn, request, show_progress=not json_output, timeout=timeout)
    )
    print_run_result(request, ended, json_output)
    if ended.rejected is not None:
        raise typer.Exit(1)


def print_run_result(request: ExperimentStart, ended: RunEnded, json_output: bool) -> None:
    if not json_output:
        _print_summary(ended)
    elif ended.rejected is not None:
        print_json(json.loads(ended.rejected.model_dump_json()))
    elif ended.finished is not None:
        print_json(
            {"run_id": request.run_id, **json.loads(ended.finished.payload.model_dump_json())}
        )


async def publish_and_follow(
    conn: Connection, request: ExperimentStart, *, show_progress: bool, timeout: float | None
) -> RunEnded:
    limits = request.limits
    total = limits.max_footsteps or limits.max_actions
    async with RunFollower(conn, request.run_id) as follower:
        await publish_start(conn, request)
        if not show_progress:
            return await follower.follow(timeout=timeout)
        with Progress(
            TextColumn("[bold]{task.fields[run]}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("footsteps · {task.fields[actions]} actions · at {task.fields[at]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task(
                "run", total=total, run=request.run_id, actions=0, at="(start)"
            )

            def on_event(event: RunEvent) -> None:
                if isinstance(event, RunStarted):
                    start = event.payload.spec.start
                    progress.update(task, at=f"({start.x},{start.y})")
                elif isinstance(event, ActionCompleted):
                    outcome = event.payload
                    progress.update(
                        task,
                        completed=outcome.footsteps,
                        actions=outcome.step,
                        at=f"({outcome.to.x},{outcome.to.y})",
                    )

            return await follower.follow(on_event, timeout=timeout)


def _print_summary(ended: RunEnded) -> None:
    if ended.rejected is not None:
        err_console.print("[bold red]the experiment was rejected:[/]")
        for problem in ended.rejected.problems:
            err_console.print(f"  {problem.field}: {problem.reason}", highlight=False)
        return
    if ended.finished is None:
        return
    end = ended.finished.payload
    table = Table(title=f"Run {ended.finished.run_id}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    outcome = "[green]goal found[/]" if end.success else "[red]goal not found[/]"
    table.add_row("outcome", outcome)
    table.add_row("stop reason", f"{end.stop_reason.value} — {end.detail}")
    table.add_row("footsteps", str(end.footsteps))
    table.add_row("actions", str(end.actions))
    table.add_row("turns", str(end.turns))
    table.add_row("final position", f"({end.position.x},{end.position.y})")
    table.add_row("duration", f"{end.duration_seconds:.2f} s")
    if end.model_calls:
        table.add_row("model calls", str(end.model_calls))
        table.add_row("tokens in/out", f"{end.input_tokens} / {end.output_tokens}")
        table.add_row("cost", f"${end.cost_usd:.6f}")
    console.print(table)
