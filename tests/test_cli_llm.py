"""`oriole run` for model agents and `oriole prompts`, in-process with --print-event (no broker)."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from oriole import generators
from oriole.cli import main
from oriole.cli.common import forget_process_state
from oriole.cli.run import parse_agent
from oriole.errors import ValidationError
from oriole.llm.prompts import load_prompt


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in ("ORIOLE_CONFIG_FILE", "ORIOLE_PRICE_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ORIOLE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")  # one error per line
    forget_process_state()
    (tmp_path / "home" / "mazes").mkdir(parents=True)
    maze = generators.generate("open-field", 12, 10, seed=3, name="field")
    maze.save(tmp_path / "home" / "mazes" / "field.json")
    yield tmp_path / "home"
    forget_process_state()


def invoke(*args: str) -> tuple[int, str, str]:
    """Through `oriole.cli.main`, as the installed command runs (its errors: status 2)."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        mock.patch.object(sys, "argv", ["oriole", *args]),
    ):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue(), err.getvalue()


def event(*args: str) -> dict[str, Any]:
    code, out, err = invoke("run", "--maze", "field", "--print-event", *args)
    assert code == 0, err
    return dict(json.loads(out))


def fails(*args: str) -> str:
    code, out, err = invoke("run", "--maze", "field", "--print-event", *args)
    assert code == 2, out
    assert out == ""
    return err


def test_the_readme_example_prints_options_and_the_full_prompt() -> None:
    start = event("--agent", "ollama:qwen2.5:7b", "--temperature", "0.2", "--num-ctx", "32768")
    assert start["agent"]["provider"] == "ollama"
    assert start["agent"]["model"] == "qwen2.5:7b"
    assert start["agent"]["options"]["temperature"] == 0.2
    assert start["agent"]["options"]["num_ctx"] == 32768
    assert start["prompt"] == load_prompt("v1").model_dump()


@pytest.mark.parametrize(
    ("text", "provider", "model"),
    [
        ("frontier", "builtin", "frontier"),
        ("builtin:random", "builtin", "random"),
        ("ollama:qwen2.5:7b", "ollama", "qwen2.5:7b"),
        ("qwen2.5:7b", "ollama", "qwen2.5:7b"),
        ("gpt-oss:20b", "ollama", "gpt-oss:20b"),
        ("llama3.1", "ollama", "llama3.1"),
        ("smollm2", "ollama", "smollm2"),
        ("mistral", "ollama", "mistral"),
        ("gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("o3-mini", "openai", "o3-mini"),
        ("o4-mini", "openai", "o4-mini"),
        ("openai:my-finetune", "openai", "my-finetune"),
        ("amazon.nova-lite-v1:0", "bedrock", "amazon.nova-lite-v1:0"),
        ("us.amazon.nova-lite-v1:0", "bedrock", "us.amazon.nova-lite-v1:0"),
        ("mistral.mistral-large-2402-v1:0", "bedrock", "mistral.mistral-large-2402-v1:0"),
        ("global.anthropic.claude-3-5-haiku-20241022-v1:0", "bedrock", None),
        ("bedrock:anthropic.claude-3-haiku-20240307-v1:0", "bedrock", None),
    ],
)
def test_agent_names(text: str, provider: str, model: str | None) -> None:
    spec = parse_agent(text)
    assert spec.provider == provider
    assert spec.model == (model or text.removeprefix("bedrock:"))


@pytest.mark.parametrize("text", ["wizard", "claude-3-haiku", "ollama:"])
def test_unclear_agents_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_agent(text)
    assert caught.value.field == "--agent"


def test_every_model_option_reaches_the_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A named endpoint must be a configured one (it is sent the provider's key).
    monkeypatch.setenv("ORIOLE_OLLAMA_ENDPOINTS", "http://gpu-box:11434")
    start = event(
        "--agent", "qwen2.5:7b",
        "--temperature", "0",
        "--num-ctx", "8192",
        "--max-output-tokens", "500",
        "--repeat-penalty", "1.1",
        "--top-p", "0.9",
        "--top-k", "40",
        "--model-seed", "7",
        "--keep-alive", "10m",
        "--endpoint", "http://gpu-box:11434",
        "--max-tokens", "100000",
        "--max-cost", "0.5",
        "--max-actions-per-turn", "5",
        "--history-actions", "30",
        "--prompt", "v2-explore",
    )  # fmt: skip
    assert start["agent"]["options"] == {
        "temperature": 0.0,
        "num_ctx": 8192,
        "max_output_tokens": 500,
        "repeat_penalty": 1.1,
        "top_p": 0.9,
        "top_k": 40,
        "seed": 7,
        "keep_alive": "10m",
    }
    assert start["agent"]["endpoint"] == "http://gpu-box:11434"
    assert start["agent"]["seed"] is None
    assert start["limits"]["max_tokens"] == 100000
    assert start["limits"]["max_cost_usd"] == 0.5
    assert start["limits"]["max_footsteps"] == 500  # untouched defaults stay
    assert start["rules"]["max_actions_per_turn"] == 5
    assert start["rules"]["history_actions"] == 30
    assert start["prompt"] == load_prompt("v2-explore").model_dump()


def test_a_custom_prompt_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.md"
    path.write_text("Head east first.\r\nThen look around.\n", encoding="utf-8")
    start = event("--agent", "gpt-4o", "--prompt", "east-first", "--prompt-file", str(path))
    assert start["prompt"] == {
        "version": "east-first",
        "text": "Head east first.\nThen look around.",
    }
    assert "--prompt-file: needs --prompt NAME" in fails(
        "--agent", "gpt-4o", "--prompt-file", str(path)
    )
    err = fails("--agent", "gpt-4o", "--prompt", "v1", "--prompt-file", str(path))
    assert "--prompt: 'v1' is a released prompt" in err and "immutable" in err
    assert "--prompt-file: cannot read" in fails(
        "--agent", "gpt-4o", "--prompt", "x", "--prompt-file", str(tmp_path / "none.md")
    )
    err = fails("--agent", "gpt-4o", "--prompt", "nope")
    assert "--prompt: unknown prompt version 'nope'; available: v1, v2-explore" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--agent", "wizard"), "--agent: cannot tell which provider serves 'wizard'"),
        (("--agent", "qwen2.5:7b", "--seed", "3"), "--seed: is the seed of the built-in agents"),
        (("--agent", "qwen2.5:7b", "--temperature", "3"), "--temperature: "),
        (("--agent", "qwen2.5:7b", "--num-ctx", "10"), "--num-ctx: "),
        (("--agent", "qwen2.5:7b", "--top-p", "1.5"), "--top-p: "),
        (("--agent", "qwen2.5:7b", "--max-cost", "0"), "--max-cost: "),
        (("--agent", "qwen2.5:7b", "--history-actions", "-1"), "--history-actions: "),
        (("--agent", "qwen2.5:7b", "--endpoint", "gpu-box:11434"), "--endpoint: expected an http"),
        (("--agent", "openai:my-ft", "--max-cost", "1"), "limits.max_cost_usd: no price"),
        (
            ("--agent", "amazon.nova-lite-v1:0", "--temperature", "1.5"),
            "agent.options.temperature: bedrock models take a temperature from 0 to 1",
        ),
    ],
)
def test_bad_options_exit_2_naming_the_option(args: tuple[str, ...], message: str) -> None:
    assert message in fails(*args)


def test_warnings_go_to_stderr_and_the_event_is_printed() -> None:
    code, out, err = invoke(
        "run", "--maze", "field", "--print-event", "--agent", "openai:my-ft", "--keep-alive", "5m"
    )
    assert code == 0
    assert json.loads(out)["agent"]["model"] == "my-ft"
    assert "no price for openai model 'my-ft': its cost is recorded as 0" in err
    assert "keep_alive is not supported by openai" in err


def test_the_price_file_setting_is_used(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = home / "prices.toml"
    prices.write_text('[openai.models]\n"my-ft" = { input = 1, output = 2 }\n', encoding="utf-8")
    monkeypatch.setenv("ORIOLE_PRICE_FILE", str(prices))
    forget_process_state()
    assert event("--agent", "openai:my-ft", "--max-cost", "1")["limits"]["max_cost_usd"] == 1.0
    prices.write_text('[openai.models]\n"my-ft" = { input = -1, output = 2 }\n', encoding="utf-8")
    err = fails("--agent", "openai:my-ft")
    assert str(prices) in err and 'openai.models."my-ft".input' in err


def test_builtin_runs_are_unchanged() -> None:
    start = event("--agent", "frontier", "--seed", "4")
    assert start["agent"] == {
        "provider": "builtin",
        "model": "frontier",
        "endpoint": None,
        "seed": 4,
        "options": {
            "temperature": None,
            "num_ctx": None,
            "max_output_tokens": None,
            "repeat_penalty": None,
            "top_p": None,
            "top_k": None,
            "seed": None,
            "keep_alive": None,
        },
    }
    assert start["prompt"] is None


def test_prompts_list_and_show() -> None:
    code, out, _ = invoke("prompts", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [row["version"] for row in rows][:3] == ["v1", "v2-explore", "v3-minimal"]
    assert rows[0]["default"] is True and len(rows[0]["sha256"]) == 64
    code, out, _ = invoke("prompts", "list")
    assert code == 0 and "v1 (default)" in out and rows[1]["sha256"][:12] in out
    code, out, _ = invoke("prompts", "show", "v3-minimal")
    assert code == 0 and out == f"{load_prompt('v3-minimal').text}\n"
    code, out, err = invoke("prompts", "show", "v0")
    assert (code, out) == (2, "")
    assert "error: VERSION: unknown prompt version 'v0'" in err
