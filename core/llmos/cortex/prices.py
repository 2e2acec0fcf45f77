"""What a model request costs, in integer micro-dollars.

Prices are dollars per million tokens, which is the same number as micro-dollars per
token, so a cost is an exact integer product. A model llmos does not know is priced as
the most expensive known model (``[cortex] prices`` overrides or adds models).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Claude model families, matched by the longest prefix of the model id: (input, output)
# in USD per million tokens. Cache writes cost 1.25x input, cache reads 0.1x input.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-5": (4.0, 20.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-haiku-4": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
}
CACHE_WRITE = 1.25
CACHE_READ = 0.1


@dataclass(frozen=True)
class Price:
    """USD per million tokens (= micro-dollars per token)."""

    model: str
    input: float
    output: float

    def cost_micro(self, usage: Mapping[str, Any]) -> int:
        """The exact cost of a response's ``usage``, rounded up to a micro-dollar."""
        fresh = _tokens(usage, "input_tokens")
        written = _tokens(usage, "cache_creation_input_tokens")
        read = _tokens(usage, "cache_read_input_tokens")
        out = _tokens(usage, "output_tokens")
        total = (fresh * self.input + written * self.input * CACHE_WRITE
                 + read * self.input * CACHE_READ + out * self.output)
        return _ceil(total)

    def input_worst_micro(self, input_tokens: int) -> int:
        return _ceil(input_tokens * self.input * CACHE_WRITE)

    def output_tokens_for(self, micro: int) -> int:
        """How many output tokens ``micro`` micro-dollars pay for."""
        return max(0, int(micro // self.output)) if self.output > 0 else 1 << 30

    def worst_case_micro(self, input_tokens: int, max_tokens: int) -> int:
        """The most a request can cost: every prompt token written to the cache (the
        dearest way to pay for input) and ``max_tokens`` of output."""
        return _ceil(input_tokens * self.input * CACHE_WRITE + max_tokens * self.output)


def _tokens(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and value > 0 else 0


def _ceil(value: float) -> int:
    whole = int(value)
    return whole if whole >= value else whole + 1


def price_for(model: str | None, overrides: Mapping[str, tuple[float, float]] | None = None
              ) -> Price:
    """The price of ``model``: the longest matching prefix, else the dearest known model."""
    table = {**DEFAULT_PRICES, **(overrides or {})}
    name = (model or "").lower()
    matches = [prefix for prefix in table if name.startswith(prefix.lower())]
    if matches:
        prefix = max(matches, key=len)
        return Price(model or prefix, *table[prefix])
    dearest = max(table.values(), key=lambda p: (p[1], p[0]))
    return Price(model or "unknown", *dearest)
