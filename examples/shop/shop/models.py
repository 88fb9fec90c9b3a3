"""Orders and their line items."""

from dataclasses import dataclass, field


@dataclass
class LineItem:
    """One product line: a SKU, a quantity and a unit price."""

    sku: str
    quantity: int
    unit_price: float

    def subtotal(self) -> float:
        return self.quantity * self.unit_price


@dataclass
class Order:
    """A customer's order, with an optional coupon code."""

    customer: str
    items: list = field(default_factory=list)
    coupon: str = ""

    def item_count(self) -> int:
        return sum(item.quantity for item in self.items)

    def list_price(self) -> float:
        return sum(item.subtotal() for item in self.items)

    def add(self, sku: str, quantity: int, unit_price: float) -> None:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self.items.append(LineItem(sku, quantity, unit_price))
