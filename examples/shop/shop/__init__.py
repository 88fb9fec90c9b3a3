"""A tiny shop: orders, pricing, checkout and receipts."""

from .models import LineItem, Order
from .checkout import checkout

__all__ = ["LineItem", "Order", "checkout"]
