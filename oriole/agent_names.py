"""What an agent name means: ``PROVIDER:MODEL``, or a bare model name whose provider is obvious.

``oriole run --agent`` (and any later spec that names agents) accepts ``ollama:qwen2.5:7b``
and, when the name alone says who serves it, just ``qwen2.5:7b``, ``frontier`` or
``gpt-4o-mini``. One function decides, so every entry point reads a name the same way.
"""

from __future__ import annotations

from oriole.agents.builtin import BUILTIN_AGENTS
from oriole.errors import ValidationError
from oriole.experiment import PROVIDERS, ProviderName
from oriole.llm.pricing import bedrock_base_id

#: Model families Ollama serves (as in the original Oriole's trigger-by-name script, plus smollm).
_OLLAMA_FAMILIES = ("llama", "qwen", "mistral", "phi", "gemma", "codellama", "deepseek", "smollm")
_OPENAI_PREFIXES = ("gpt-", "o1", "o3", "o4-", "chatgpt-")
_BEDROCK_VENDORS = ("anthropic.", "amazon.", "meta.", "mistral.", "cohere.", "ai21.", "deepseek.")


def infer_provider(model: str) -> ProviderName | None:
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


def split_agent_name(text: str, field: str = "agent") -> tuple[ProviderName, str]:
    """``PROVIDER:MODEL`` (``ollama:qwen2.5:7b`` is model ``qwen2.5:7b``) or a bare model name
    -> (provider, model); a ValidationError on ``field`` when the provider cannot be told."""
    text = text.strip()
    prefix, sep, rest = text.partition(":")
    for provider in PROVIDERS:
        if sep and prefix == provider:
            if not rest:
                raise ValidationError(field, f"no model after {prefix!r}: (e.g. {prefix}:NAME)")
            return provider, rest
    inferred = infer_provider(text)
    if inferred is None:
        raise ValidationError(
            field,
            f"cannot tell which provider serves {text!r}; write PROVIDER:MODEL with "
            f"PROVIDER one of {', '.join(PROVIDERS)} (e.g. ollama:{text})",
        )
    return inferred, text
