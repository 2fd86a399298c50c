"""/api/webhooks: subscriptions to the hub's events, their deliveries, and replaying a dead one."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crm_core import audit
from crm_core.errors import InvalidInput
from crm_core.models import Role
from crm_core.outbox import EVENT_TYPES, OutboxEvent
from crm_core.subscriptions import Subscriptions, WebhookDelivery, WebhookSubscription
from hub.web.endpoints import Api, actor_of, json_response, session_of
from hub.web.state import CONTEXT
from hub.web.webhook_schemas import (
    DeliveryListOut,
    SubscriptionIn,
    SubscriptionListOut,
    SubscriptionOut,
    SubscriptionPatch,
)
from webhooks.targets import TargetRefused, check_target

api = Api()
ADMIN = {Role.admin}
ONE = r"/api/webhooks/{id:\d+}"


def _subscriptions(request: web.Request) -> Subscriptions:
    return Subscriptions(session_of(request))


async def _checked(request: web.Request, url: str) -> str:
    try:
        await check_target(url, allow_private=request.app[CONTEXT].settings.webhooks.allow_private)
    except TargetRefused as exc:
        raise InvalidInput(str(exc), field="url") from None
    return url


def _shown(subscription: WebhookSubscription, *, with_secret: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": subscription.id,
        "url": subscription.url,
        "event_types": subscription.event_types,
        "active": subscription.active,
        "description": subscription.description,
        "created_at": subscription.created_at.isoformat(),
    }
    if with_secret:
        shown["secret"] = subscription.secret
    return shown


@api.route(
    "GET", "/api/webhooks", summary="Webhook subscriptions", roles=ADMIN, tag="webhooks", response=SubscriptionListOut
)
async def list_webhooks(request: web.Request) -> web.Response:
    return json_response(
        {"items": [_shown(s) for s in await _subscriptions(request).all()], "event_types": list(EVENT_TYPES)}
    )


@api.route(
    "POST", "/api/webhooks", summary="Subscribe a URL to events (the answer carries the signing secret)",
    roles=ADMIN, tag="webhooks", body=SubscriptionIn, response=SubscriptionOut, response_status=201,
)  # fmt: skip
async def create_webhook(request: web.Request, body: SubscriptionIn) -> web.Response:
    url = await _checked(request, body.url)
    subscription = await _subscriptions(request).create(url, body.event_types, body.description)
    audit.record(session_of(request), actor_of(request), "create", "webhook", subscription.id, url=url)
    return json_response(_shown(subscription, with_secret=True), status=201)


@api.route(
    "GET", ONE, summary="One subscription, with its signing secret", roles=ADMIN, tag="webhooks",
    response=SubscriptionOut, errors=(404,),
)  # fmt: skip
async def read_webhook(request: web.Request) -> web.Response:
    return json_response(_shown(await _subscriptions(request).get(int(request.match_info["id"])), with_secret=True))


@api.route(
    "PATCH", ONE, summary="Change a subscription (URL, events, active)", roles=ADMIN, tag="webhooks",
    body=SubscriptionPatch, response=SubscriptionOut, errors=(404,),
)  # fmt: skip
async def change_webhook(request: web.Request, body: SubscriptionPatch) -> web.Response:
    subscription = await _subscriptions(request).get(int(request.match_info["id"]))
    if body.url is not None:
        subscription.url = await _checked(request, body.url)
    if body.event_types is not None:
        unknown = sorted(set(body.event_types) - set(EVENT_TYPES))
        if unknown:
            raise InvalidInput(f"unknown event types: {', '.join(unknown)}", field="event_types")
        subscription.event_types = body.event_types
    if body.active is not None:
        subscription.active = body.active
    if body.description is not None:
        subscription.description = body.description
    audit.record(session_of(request), actor_of(request), "update", "webhook", subscription.id,
                 **body.model_dump(exclude_none=True))  # fmt: skip
    return json_response(_shown(subscription, with_secret=True))


@api.route(
    "DELETE", ONE, summary="Remove a subscription", roles=ADMIN, tag="webhooks", response_status=204, errors=(404,)
)
async def delete_webhook(request: web.Request) -> web.Response:
    subscription = await _subscriptions(request).get(int(request.match_info["id"]))
    await session_of(request).delete(subscription)
    audit.record(session_of(request), actor_of(request), "delete", "webhook", subscription.id, url=subscription.url)
    return web.Response(status=204)


@api.route(
    "GET", ONE + "/deliveries", summary="The latest deliveries and the receiver's answers", roles=ADMIN,
    tag="webhooks", response=DeliveryListOut, errors=(404,),
)  # fmt: skip
async def list_deliveries(request: web.Request) -> web.Response:
    subscriptions = _subscriptions(request)
    subscription = await subscriptions.get(int(request.match_info["id"]))
    return json_response({"items": [_delivery(d, e) for d, e in await subscriptions.deliveries(subscription.id)]})


@api.route(
    "POST", r"/api/webhooks/deliveries/{id:\d+}/replay", summary="Send a delivery again (a dead one, say)",
    roles=ADMIN, tag="webhooks", errors=(404,),
)  # fmt: skip
async def replay_delivery(request: web.Request) -> web.Response:
    delivery = await _subscriptions(request).replay(int(request.match_info["id"]))
    audit.record(session_of(request), actor_of(request), "replay", "webhook_delivery", delivery.id)
    return json_response({"id": delivery.id, "status": delivery.status})


def _delivery(delivery: WebhookDelivery, event: OutboxEvent) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": delivery.id,
        "event_id": event.event_id,
        "type": event.type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "delivered_at": iso(delivery.delivered_at),
        "last_status": delivery.last_status,
        "last_response": delivery.last_response,
        "last_error": delivery.last_error,
    }
