"""`oriole run` and `oriole rerun`: admit a start event, publish it, follow the run.

Both build a start document, admit it with the core's admission (the same the worker and
the gateway run), print every problem at once, and publish through :mod:`.follower`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer
from pydantic import BaseModel

from oriole.admission import Admitted, admit, endpoint_problem
from oriole.agent_names import split_agent_name
from oriole.cli.common import (
    catalogue,
    console,
    err_console,
    parse_assignments,
    parse_labels,
    parse_point,
    print_json,
    settings,
    stack_connection,
)
from oriole.cli.data import RunNotArchived, archived_run
from oriole.cli.follower import RunEnded, RunFollower, publish_start
from oriole.cli.run_display import print_run_result, run_progress
from oriole.environment.stack_file import Connection
from oriole.errors import ValidationError
from oriole.events import RunEvent, RunStarted
from oriole.experiment import AgentSpec, ExperimentStart, GameRules, ModelOptions, RunLimits
from oriole.llm.pricing import load_price_table
from oriole.llm.prompts import is_released, normalise_prompt, prompt_versions
from oriole.rerun import fork_document, rerun_document
from oriole.schema_base import field_problems, new_run_id
from providers.factory import allowed_endpoints

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


def parse_agent(text: str, seed: int | None = None) -> AgentSpec:
    """``--agent`` (see :func:`oriole.agent_names.split_agent_name`); ``seed`` is a built-in
    agent's seed."""
    provider, model = split_agent_name(text, "--agent")
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
        int | None,
        typer.Option(
            "--max-moves",
            help="Footsteps (successful moves) limit (default 500). Above the default "
            "--max-actions it raises it; above a given one it is an error.",
        ),
    ] = None,
    max_actions: Annotated[
        int | None,
        typer.Option(
            "--max-actions",
            help="Actions limit: moves, failed moves, recalls (default 2000). Below the "
            "default --max-moves it switches that off.",
        ),
    ] = None,
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
        int | None,
        typer.Option(
            "--seed",
            help="Seed of a built-in agent's free choices (random: every move; frontier: "
            "ties; wall-follower: hand and first heading); 0 or none: the fixed baseline.",
        ),
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
    labels = parse_labels(label or [])
    origin = parse_point(start, "--start") if start else None
    endpoint_refused = None if endpoint is None else endpoint_problem(endpoint)
    if endpoint_refused is not None:
        raise ValidationError("--endpoint", f"{endpoint_refused}: {endpoint!r}")
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
    publish_admitted(
        document, print_event=print_event, wait=wait, json_output=json_output, timeout=timeout
    )


def rerun(
    run_id: Annotated[str, typer.Argument(help="The archived run to run again.")],
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a field of the recorded spec: dotted.path=value (JSON value), "
            "e.g. agent.options.temperature=0.2 or limits.max_footsteps=null; repeatable.",
        ),
    ] = None,
    new_run_id: Annotated[
        str | None, typer.Option("--run-id", help="Id of the new run (default: generated).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the new run to its end.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    print_event: Annotated[
        bool, typer.Option("--print-event", help="Print the start event, publish nothing.")
    ] = False,
) -> None:
    """Start a new experiment with an archived run's spec (and overrides), linked to it."""
    events = asyncio.run(archived_run(run_id))
    started = events[0]
    if not isinstance(started, RunStarted):
        raise RunNotArchived(f"run {run_id!r}: the archive does not start with run.started")
    overrides = parse_assignments(assignments or [], "--set")
    document = rerun_document(started, overrides, run_id=new_run_id)
    publish_admitted(
        document,
        print_event=print_event,
        wait=wait,
        json_output=json_output,
        note=f" (rerun of {run_id})",
    )


def fork(
    run_id: Annotated[str, typer.Argument(help="The archived, finished run to continue.")],
    at: Annotated[
        int,
        typer.Option(
            "--at",
            help="The parent's step to continue after (0: from its start); the fork inherits "
            "its position, tiles seen and history up to there.",
            show_default=False,
        ),
    ],
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent",
            help="Who continues, as in `oriole run` (default: the parent's agent).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of a built-in --agent.", show_default=False)
    ] = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a field of the parent's spec: dotted.path=value (JSON value), "
            "e.g. agent.options.temperature=0.2 or limits.max_footsteps=800; repeatable.",
        ),
    ] = None,
    new_run_id: Annotated[
        str | None, typer.Option("--run-id", help="Id of the fork (default: generated).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the fork to its end.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    print_event: Annotated[
        bool, typer.Option("--print-event", help="Print the start event, publish nothing.")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Give up waiting after this many seconds.")
    ] = None,
) -> None:
    """Continue an archived run from one of its steps, with another agent, model, prompt or
    limits (or the same, to measure the variance from there)."""
    if seed is not None and agent is None:
        raise ValidationError("--seed", "goes with --agent (the parent's agent keeps its seed)")
    chosen = None if agent is None else parse_agent(agent, seed).model_dump()
    events = asyncio.run(archived_run(run_id))
    started = events[0]
    if not isinstance(started, RunStarted):
        raise RunNotArchived(f"run {run_id!r}: the archive does not start with run.started")
    overrides = parse_assignments(assignments or [], "--set")
    document = fork_document(started, at, overrides, agent=chosen, run_id=new_run_id)
    publish_admitted(
        document,
        print_event=print_event,
        wait=wait,
        json_output=json_output,
        timeout=timeout,
        note=f" (fork of {run_id} after step {at})",
        parents={run_id: events},
    )


def publish_admitted(
    document: dict[str, Any],
    *,
    print_event: bool,
    wait: bool,
    json_output: bool,
    timeout: float | None = None,
    note: str = "",
    parents: Mapping[str, Sequence[RunEvent]] | None = None,
) -> None:
    """Admit ``document`` (exit 2 naming every problem), then print it or publish it.

    ``parents`` holds a fork's parent, read from the archive by the caller."""
    current = settings()
    known = parents or {}
    verdict = admit(
        document,
        catalogue().get,
        prices=load_price_table(current.price_file),
        endpoints=allowed_endpoints(current),
        find_parent=lambda parent_id: known.get(parent_id, []),
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
    conn = stack_connection()
    if not wait:
        asyncio.run(publish_start(conn, request))
        if json_output:
            extra: dict[str, Any] = {"rerun_of": request.rerun_of} if request.rerun_of else {}
            if request.fork_of is not None:
                extra["fork_of"] = request.fork_of.model_dump()
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


async def publish_and_follow(
    conn: Connection, request: ExperimentStart, *, show_progress: bool, timeout: float | None
) -> RunEnded:
    """Publish ``request`` and follow its run to the end (with a progress line if asked)."""
    async with RunFollower(conn, request.run_id) as follower:
        await publish_start(conn, request)
        if not show_progress:
            return await follower.follow(timeout=timeout)
        with run_progress(request) as on_event:
            return await follower.follow(on_event, timeout=timeout)
