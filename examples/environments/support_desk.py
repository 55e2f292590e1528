"""A tool-using task over a small in-memory database: refund the right order.

Serve it with ``rk-serve examples/environments/support_desk.py``. Each seed builds a different
shop (customers, orders, products) and a complaint from one customer about one product. The
agent must look the customer up, find the matching delivered order among several, and refund it.
A refund is irreversible: refunding the wrong order (or refunding twice) ends the episode with a
negative reward, so an agent that guesses ids instead of reading the database loses.
"""

from __future__ import annotations

import json
import random

from reward_kit.env import Environment, ToolResult, tool

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
PRODUCTS = ["kettle", "lamp", "toaster", "blender", "heater", "fan", "radio", "clock"]
STATUSES = ["delivered", "delivered", "shipped", "cancelled"]


class SupportDesk(Environment):
    """Resolve a customer's complaint by refunding the right order in a small shop database."""

    name = "support_desk"
    max_steps = 8
    step_timeout = 5

    def reset(self, *, task: object = None, seed: int | None = None) -> str:
        rng = random.Random(seed)
        names = rng.sample([f"{first} {last}" for first in FIRST for last in LAST], 6)
        self.customers = {f"C{100 + i}": name for i, name in enumerate(names)}
        candidates: list[str] = []
        while not candidates:  # deterministic for a seed: the same draws, the same shop
            self.orders = _orders(rng, list(self.customers))
            candidates = _unambiguous(self.orders)
        self.target = rng.choice(candidates)
        target = self.orders[self.target]
        self.refunded: list[str] = []
        customer = self.customers[str(target["customer_id"])]
        return (
            f"Customer {customer} writes: 'The {target['product']} I ordered arrived broken. "
            "Please refund it.' Use the tools to find the order and refund it."
        )

    @tool
    def find_customer(self, name: str) -> ToolResult:
        """Look a customer up by full name.

        Args:
            name: the customer's full name, e.g. "Ada Lovelace".
        """
        found = [cid for cid, full in self.customers.items() if full.lower() == name.lower()]
        if not found:
            return ToolResult(content=f"no customer named {name!r}")
        return ToolResult(content=json.dumps({"customer_id": found[0]}))

    @tool
    def list_orders(self, customer_id: str) -> ToolResult:
        """List a customer's orders: id, product, status and total.

        Args:
            customer_id: the id find_customer returned, e.g. "C101".
        """
        rows = [
            {"order_id": order_id, **{k: v for k, v in order.items() if k != "customer_id"}}
            for order_id, order in self.orders.items()
            if order["customer_id"] == customer_id
        ]
        return ToolResult(content=json.dumps(rows))

    @tool
    def refund(self, order_id: str) -> ToolResult:
        """Refund an order in full. This cannot be undone.

        Args:
            order_id: the order to refund, e.g. "O1007".
        """
        if order_id not in self.orders:
            return ToolResult(content=f"no order {order_id!r}")
        if order_id in self.refunded:
            return ToolResult(content=f"{order_id} was already refunded", reward=-1.0, done=True)
        self.refunded.append(order_id)
        if order_id != self.target:
            return ToolResult(content=f"refunded {order_id}", reward=-1.0, done=True)
        return ToolResult(content=f"refunded {order_id}", reward=1.0, done=True)


def _orders(rng: random.Random, customers: list[str]) -> dict[str, dict[str, object]]:
    return {
        f"O{1000 + number}": {
            "customer_id": rng.choice(customers),
            "product": rng.choice(PRODUCTS),
            "status": rng.choice(STATUSES),
            "total": round(rng.uniform(10, 200), 2),
        }
        for number in range(1, 25)
    }


def _unambiguous(orders: dict[str, dict[str, object]]) -> list[str]:
    """Delivered orders that are their customer's only order of that product: a complaint
    naming the customer and product then points at exactly one order."""
    pairs = [(order["customer_id"], order["product"]) for order in orders.values()]
    return sorted(
        order_id
        for order_id, order in orders.items()
        if order["status"] == "delivered"
        and pairs.count((order["customer_id"], order["product"])) == 1
    )
