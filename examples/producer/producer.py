"""A small producer: the shop puts an OrderPlaced event on its EventBridge bus when an order is
placed. Plain boto3, configured the usual way (AWS_* environment, profile), nothing hook-specific:
test_producer.py tests it end to end against hook's pytest plugin."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

SOURCE = "shop.orders"


def place_order(order_id: str, total: float, items: list[str], client: Any = None) -> str:
    """Put ``OrderPlaced`` on the orders bus; returns the event id EventBridge gave it."""
    events = client or boto3.client("events")
    detail = {"order_id": order_id, "total": total, "items": items}
    response = events.put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": "OrderPlaced",
                "Detail": json.dumps(detail),
                "EventBusName": os.environ.get("ORDERS_BUS", "default"),
            }
        ]
    )
    entry = response["Entries"][0]
    if response.get("FailedEntryCount") or "EventId" not in entry:
        raise RuntimeError(f"EventBridge rejected the event: {entry.get('ErrorMessage')}")
    if total >= 1000:
        # Big orders also go to the fraud check (a second event from the same call).
        check = {"order_id": order_id, "reason": "large order"}
        events.put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": "FraudCheckRequested",
                    "Detail": json.dumps(check),
                    "EventBusName": os.environ.get("ORDERS_BUS", "default"),
                }
            ]
        )
    return str(entry["EventId"])
