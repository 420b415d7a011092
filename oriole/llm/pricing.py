"""Model prices as data: what a model call costs, from a table the user can override.

Prices change more often than code, so they live in ``oriole/llm/prices.toml`` (USD per
million tokens) and a user file of the same format is merged over it (``ORIOLE_PRICE_FILE``,
see docs/pricing.md). Costs are computed with ``Decimal`` so that per-call costs add up
exactly (to 1e-10 USD) however many calls a run makes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from oriole.errors import ValidationError
from oriole.experiment import MODEL_PROVIDERS, PROVIDERS

__all__ = [
    "INFERENCE_PROFILE_PREFIXES",
    "WILDCARD",
    "Price",
    "PriceTable",
    "bedrock_base_id",
    "load_price_table",
]

#: Providers that can have prices (built-in agents cost nothing and are never priced).
#: A model key that prices every model of its provider without an entry of its own.
WILDCARD: Final = "*"
#: Bedrock cross-region inference profile ids are a region prefix plus the base model id and
#: cost what the base model costs.
INFERENCE_PROFILE_PREFIXES: Final = (
    "us.",
    "us-gov.",
    "eu.",
    "apac.",
    "jp.",
    "au.",
    "ca.",
    "global.",
)


def bedrock_base_id(model: str) -> str:
    """The model id behind a cross-region inference profile id (``us.amazon.nova-lite-v1:0``
    → ``amazon.nova-lite-v1:0``); other ids unchanged."""
    for prefix in INFERENCE_PROFILE_PREFIXES:
        if model.startswith(prefix):
            return model.removeprefix(prefix)
    return model


_MILLION: Final = Decimal(1_000_000)
_QUANTUM: Final = Decimal("1e-10")


def _decimal(value: Decimal | float | int | str, what: str) -> Decimal:
    if isinstance(value, bool):
        raise ValidationError(what, "must be a number of USD per million tokens")
    try:
        # str() first: the float 0.035 becomes Decimal("0.035"), not its binary neighbour.
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation as exc:
        raise ValidationError(what, f"not a number: {value!r}") from exc
    if not number.is_finite() or number < 0:
        raise ValidationError(what, f"must be a finite number >= 0, got {value!r}")
    return number


class Price:
    """The price of one model in USD per million input and output tokens."""

    __slots__ = ("_as_of", "_input", "_output")

    def __init__(
        self,
        input_per_million: Decimal | float | int | str,
        output_per_million: Decimal | float | int | str,
        as_of: date | None = None,
    ) -> None:
        self._input = _decimal(input_per_million, "input_per_million")
        self._output = _decimal(output_per_million, "output_per_million")
        self._as_of = as_of

    @property
    def input_per_million(self) -> Decimal:
        return self._input

    @property
    def output_per_million(self) -> Decimal:
        return self._output

    @property
    def as_of(self) -> date | None:
        return self._as_of

    def exact_cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        """The exact cost in USD, for adding up many calls without rounding drift."""
        if input_tokens < 0 or output_tokens < 0:
            raise ValidationError(
                "tokens", f"token counts must be >= 0, got {input_tokens} / {output_tokens}"
            )
        return (input_tokens * self._input + output_tokens * self._output) / _MILLION

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The cost in USD, rounded to 10 decimals (1e-10 USD is far below any real price)."""
        exact = self.exact_cost(input_tokens, output_tokens)
        return float(exact.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN))

    def _key(self) -> tuple[Decimal, Decimal, date | None]:
        return (self._input, self._output, self._as_of)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Price) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Price({str(self._input)!r}, {str(self._output)!r}, as_of={self._as_of!r})"


class PriceTable:
    """Prices by provider and model id; immutable (``merged`` returns a new table)."""

    __slots__ = ("_prices",)

    def __init__(self, prices: Mapping[str, Mapping[str, Price]] | None = None) -> None:
        self._prices: dict[str, dict[str, Price]] = {
            provider: dict(models) for provider, models in (prices or {}).items()
        }

    @classmethod
    def builtin(cls) -> PriceTable:
        """The table shipped with Oriole (``oriole/llm/prices.toml``)."""
        return _builtin_table()

    @classmethod
    def from_file(cls, path: Path) -> PriceTable:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(str(path), f"cannot read the price file ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise ValidationError(str(path), f"not UTF-8 text ({exc.reason})") from exc
        return cls.from_toml(text, str(path))

    @classmethod
    def from_toml(cls, text: str, source: str) -> PriceTable:
        """Parse the price table format (see prices.toml); errors name ``source`` and the key."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(source, f"not valid TOML ({exc})") from exc
        prices: dict[str, dict[str, Price]] = {}
        for provider, section in document.items():
            if provider not in MODEL_PROVIDERS:
                raise ValidationError(
                    f"{source}: {provider}",
                    "unknown provider; expected one of "
                    + ", ".join(p for p in PROVIDERS if p in MODEL_PROVIDERS),
                )
            prices[provider] = _parse_provider(section, f"{source}: {provider}")
        return cls(prices)

    def merged(self, override: PriceTable) -> PriceTable:
        """This table with every entry of ``override`` added or replacing ours."""
        combined = {provider: dict(models) for provider, models in self._prices.items()}
        for provider, models in override._prices.items():
            combined.setdefault(provider, {}).update(models)
        return PriceTable(combined)

    def price(self, provider: str, model: str) -> Price | None:
        """The price of ``model``: its own entry, its base id's, or the provider's ``*``."""
        models = self._prices.get(provider)
        if not models:
            return None
        found = models.get(model)
        if found is None and provider == "bedrock":
            found = models.get(bedrock_base_id(model))
        if found is None and model != WILDCARD:
            found = models.get(WILDCARD)
        return found

    def entries(self) -> Iterator[tuple[str, str, Price]]:
        """Every ``(provider, model, price)``, sorted."""
        for provider in sorted(self._prices):
            for model in sorted(self._prices[provider]):
                yield provider, model, self._prices[provider][model]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PriceTable) and self._prices == other._prices

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        count = sum(len(models) for models in self._prices.values())
        return f"PriceTable({count} prices)"


def _parse_provider(section: Any, where: str) -> dict[str, Price]:
    if not isinstance(section, dict):
        raise ValidationError(where, "expected a table with `as_of` and `models`")
    unknown = sorted(set(section) - {"as_of", "models"})
    if unknown:
        raise ValidationError(f"{where}.{unknown[0]}", "unknown key; expected as_of or models")
    default_date = _date(section.get("as_of"), f"{where}.as_of")
    models = section.get("models", {})
    if not isinstance(models, dict):
        raise ValidationError(f"{where}.models", "expected a table of model = {input, output}")
    return {
        model: _parse_price(entry, f'{where}.models."{model}"', default_date)
        for model, entry in models.items()
    }


def _parse_price(entry: Any, where: str, default_date: date | None) -> Price:
    if not isinstance(entry, dict):
        raise ValidationError(where, "expected { input = USD, output = USD } per million tokens")
    unknown = sorted(set(entry) - {"input", "output", "as_of"})
    if unknown:
        raise ValidationError(f"{where}.{unknown[0]}", "unknown key; expected input, output, as_of")
    values: list[Decimal] = []
    for side in ("input", "output"):
        value = entry.get(side)
        if value is None:
            raise ValidationError(f"{where}.{side}", "missing (USD per million tokens)")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"{where}.{side}", f"must be a number, got {value!r}")
        values.append(_decimal(value, f"{where}.{side}"))
    as_of = _date(entry.get("as_of"), f"{where}.as_of")
    return Price(values[0], values[1], as_of if as_of is not None else default_date)


def _date(value: Any, where: str) -> date | None:
    if value is None:
        return None
    # tomllib gives a datetime for `2026-11-24T00:00:00` and a date for `2026-11-24`.
    if not isinstance(value, date) or hasattr(value, "hour"):
        raise ValidationError(where, f"expected a date such as 2026-11-24, got {value!r}")
    return value


@cache
def _builtin_table() -> PriceTable:
    resource = resources.files("oriole").joinpath("llm", "prices.toml")
    return PriceTable.from_toml(resource.read_text(encoding="utf-8"), "oriole/llm/prices.toml")


def load_price_table(extra_file: Path | None = None) -> PriceTable:
    """The built-in prices with the user's file (if any) merged over them."""
    table = PriceTable.builtin()
    if extra_file is None:
        return table
    return table.merged(PriceTable.from_file(extra_file))
