"""Prices an order: bulk discounts, coupons and tax."""

from .models import Order

BULK_THRESHOLD = 10
BULK_RATE = 0.10
TAX_RATE = 0.0

COUPONS = {
    "SPRING10": 0.10,
    "WELCOME5": 0.05,
}


class UnknownCoupon(KeyError):
    """Raised for a coupon code the shop does not know."""


class PriceCalculator:
    """Computes what a customer pays for an order."""

    def __init__(self, coupons=None):
        self.coupons = dict(COUPONS if coupons is None else coupons)

    def bulk_discount(self, order: Order) -> float:
        """The bulk discount amount: a rate off the list price for large orders."""
        if order.item_count() >= BULK_THRESHOLD:
            return order.list_price() * BULK_RATE
        return 0.0

    def coupon_rate(self, code: str) -> float:
        if not code:
            return 0.0
        try:
            return self.coupons[code.upper()]
        except KeyError:
            raise UnknownCoupon(code)

    def apply_coupon(self, order: Order, amount: float) -> float:
        """Takes the coupon off. The coupon applies to the list price, once."""
        rate = self.coupon_rate(order.coupon)
        discounted = amount - amount * rate
        # BUG: the bulk discount was already taken off `amount`.
        return discounted - self.bulk_discount(order)

    def total(self, order: Order) -> float:
        amount = order.list_price() - self.bulk_discount(order)
        amount = self.apply_coupon(order, amount)
        return round(amount * (1 + TAX_RATE), 2)
