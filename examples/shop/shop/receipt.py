"""Receipts: lines, discounts and a consistency check."""


class Receipt:
    """What the customer takes home."""

    def __init__(self, customer: str):
        self.customer = customer
        self.lines = []
        self.discount = 0.0

    def add_line(self, label: str, amount: float) -> None:
        self.lines.append((label, amount))

    def add_discount(self, amount: float) -> None:
        self.discount += amount

    def verify(self, total: float) -> None:
        """Checks that the charged total equals the lines minus the discount."""
        expected = round(sum(a for _, a in self.lines) - self.discount, 2)
        if abs(expected - total) > 0.005:
            raise ValueError(f"total {total:.2f} does not match line sum {expected:.2f}")

    def render(self) -> str:
        rows = [f"{label:<20}{amount:>10.2f}" for label, amount in self.lines]
        rows.append(f"{'discount':<20}{-self.discount:>10.2f}")
        return "\n".join(rows)
