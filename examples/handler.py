"""An example AWS Lambda handler: price the orders announced by "Order Placed" events.

Run it on the events of your bus, reloading whenever you save this file:

    hook listen --handler examples/handler.py:handler --source shop.orders

It is a plain Lambda handler, ``handler(event, context)`` with an EventBridge event, so the same
file deploys unchanged. An event it cannot process raises, which hook records as a failed
delivery you can fix and send again with ``hook replay --failed``.
"""

from decimal import Decimal, InvalidOperation

FREE_SHIPPING_FROM = Decimal("50")


class InvalidOrderError(ValueError):
    """The event does not describe an order this function can price."""


def handler(event, context):
    if event.get("detail-type") != "Order Placed":
        print(f"ignoring {event.get('detail-type')!r} from {event.get('source')}")
        return {"status": "ignored"}

    order = event["detail"]
    order_id = order.get("orderId")
    items = order.get("items") or []
    if not order_id or not items:
        raise InvalidOrderError(f"order {order_id!r} has no items")

    total = sum((_price(item) * int(item.get("quantity", 1)) for item in items), Decimal(0))
    currency = order.get("currency", "USD")
    shipping = "free" if total >= FREE_SHIPPING_FROM else "standard"
    # Lambda sends stdout to CloudWatch Logs; hook shows it with the delivery (-v).
    print(f"order {order_id}: {len(items)} item(s), {total} {currency}, {shipping} shipping")
    return {
        "status": "priced",
        "orderId": order_id,
        "total": str(total),
        "currency": currency,
        "shipping": shipping,
        "requestId": context.aws_request_id,
        "remainingMs": context.get_remaining_time_in_millis(),
    }


def _price(item):
    try:
        return Decimal(str(item["price"]))
    except (KeyError, InvalidOperation) as exc:
        raise InvalidOrderError(f"item {item.get('sku', '?')!r} has no valid price") from exc
