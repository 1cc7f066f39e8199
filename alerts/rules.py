"""The rule file format as pydantic models. Unknown keys are errors, never silently ignored.

These models check the shape of what a trader wrote. Whether a product exists, a unit converts or
a digest is defined is decided when a whole directory is compiled (``alerts.ruleset``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Amount = int | float | str
ID_PATTERN = r"^[a-z0-9_-]+$"
PRICE_CONDITIONS = ("above", "below", "crosses_above", "crosses_below")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceCondition(Strict):
    product: str = Field(min_length=1)
    above: Amount | None = None
    below: Amount | None = None
    crosses_above: Amount | None = None
    crosses_below: Amount | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PriceCondition:
        given = [k for k in PRICE_CONDITIONS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of above, below, crosses_above, crosses_below"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in PRICE_CONDITIONS if getattr(self, k) is not None)

    @property
    def threshold(self) -> Amount:
        value = getattr(self, self.kind)
        assert value is not None
        return value  # type: ignore[no-any-return]


def _phrases(v: list[str]) -> list[str]:
    for p in v:
        if not p.strip().strip("*").strip():
            raise ValueError(f"phrase {p!r} has no words")
    return v


class NewsCondition(Strict):
    any: list[str] = []
    all: list[str] = []
    none: list[str] = []

    _check = field_validator("any", "all", "none")(_phrases)

    @model_validator(mode="after")
    def _something(self) -> NewsCondition:
        if not self.any and not self.all:
            raise ValueError("give at least one phrase under any: or all:")
        return self


class Rule(Strict):
    id: str = Field(pattern=ID_PATTERN, max_length=100)
    description: str = ""
    enabled: bool = True
    price: PriceCondition | None = None
    news: NewsCondition | None = None
    notify: list[str] = Field(min_length=1)
    cooldown: str | int | None = None
    severity: Literal["info", "warning", "critical"] = "warning"

    @model_validator(mode="after")
    def _one_condition(self) -> Rule:
        if (self.price is None) == (self.news is None):
            raise ValueError("a rule needs exactly one condition: price: or news:")
        return self


class Digest(Strict):
    name: str = Field(pattern=ID_PATTERN)
    schedule: str
    timezone: str | None = None
    to: list[str] = Field(min_length=1)
    subject: str | None = None
    send_empty: bool = False


class ProductDef(Strict):
    name: str = Field(min_length=1)
    unit: str
    aliases: list[str] = []


TOP_LEVEL_KEYS = ("rules", "digests", "products")
