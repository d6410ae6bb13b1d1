"""Money as integer cents and an ISO currency: no float ever touches a price."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

CURRENCIES = frozenset({"EUR", "USD", "GBP"})


@dataclass(frozen=True)
class Money:
    cents: int
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if self.currency not in CURRENCIES:
            raise ValueError(f"unsupported currency {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.cents + other.cents, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.cents * quantity, self.currency)

    def to_json(self) -> dict[str, object]:
        return {"amount": f"{Decimal(self.cents) / 100:.2f}", "currency": self.currency}


def parse_money(amount: str | int | float, currency: str = "EUR") -> Money:
    """``"12.30"`` → ``Money(1230)``; rounds half-even to the cent."""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        raise ValueError(f"not an amount: {amount!r}") from None
    if value < 0:
        raise ValueError("an amount cannot be negative")
    return Money(int(value * 100), currency)
