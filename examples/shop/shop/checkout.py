"""Checkout: price an order and issue a verified receipt."""

from .models import Order
from .pricing import PriceCalculator
from .receipt import Receipt


def format_money(value: float) -> str:
    return f"{value:.2f}"


def expected_total(order: Order, calculator: PriceCalculator) -> float:
    """What the receipt should add up to: list price minus each discount once."""
    list_price = order.list_price()
    bulk = calculator.bulk_discount(order)
    coupon = list_price * calculator.coupon_rate(order.coupon)
    return round(list_price - bulk - coupon, 2)


def checkout(order: Order, calculator: PriceCalculator = None) -> Receipt:
    """Prices the order and returns its receipt."""
    calculator = calculator or PriceCalculator()
    if not order.items:
        raise ValueError("cannot check out an empty order")
    total = calculator.total(order)
    receipt = Receipt(order.customer)
    for item in order.items:
        receipt.add_line(item.sku, item.subtotal())
    receipt.add_discount(order.list_price() - expected_total(order, calculator))
    receipt.verify(total)
    return receipt
