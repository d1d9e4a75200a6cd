"""Signed webhook deliveries from the sandbox to a local receiver, verified by parse_webhook."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from tests.support.engine import wait_for
from wix_support import Receiver, WixAdmin, connector, run

from orderbridge.connectors.errors import AuthError, ConfigError
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.wix.connector import WixConnector


def _parse(url: str, site: dict[str, Any], bodies: list[bytes], key: str, **settings: Any) -> list[Any]:
    async def go(c: WixConnector) -> list[Any]:
        return [await c.parse_webhook({"content-type": "text/plain"}, b) for b in bodies]
    return list(run(connector(url, site, settings, webhook_public_key=key), go))


def _unpack(body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Three levels: JWT claims -> envelope -> domain event."""
    envelope = json.loads(jwt.decode(body, options={"verify_signature": False})["data"])
    return envelope, json.loads(envelope["data"])


@pytest.fixture
def hooked(wix_url: str, admin: WixAdmin) -> Any:
    receiver = Receiver()
    with ServedApp(receiver.app) as served:
        site = admin.site()
        admin.post(f"/sites/{site['siteId']}/webhooks", {"url": served.url + "/hook"})
        yield site, receiver


def test_events_are_delivered_signed_and_parsed(wix_url: str, admin: WixAdmin, hooked: Any) -> None:
    site, receiver = hooked
    key = admin.get("/webhooks/public-key")["publicKey"]
    order = admin.order(site, paymentStatus="NOT_PAID", status="PENDING")  # created
    admin.act(site, order["id"], "pay")  # payment_status_updated, approved, updated
    admin.act(site, order["id"], "cancel")  # canceled, updated
    wait_for(lambda: len(receiver.bodies) >= 6)
    assert receiver.headers[0]["content-type"].startswith("text/plain")

    decoded = [_unpack(b) for b in receiver.bodies]
    envelope, event = next((env, ev) for env, ev in decoded if env["eventType"] == "wix.ecom.v1.order_created")
    assert envelope["instanceId"] == site["instanceId"]
    assert event["entityId"] == order["id"] and event["createdEvent"]["entity"]["id"] == order["id"]

    events = _parse(wix_url, site, receiver.bodies, key)
    assert len({e.event_id for e in events}) == len(events)  # each event has its own id
    assert all(e.external_ids == [order["id"]] for e in events)
    kinds = {(ev["slug"], e.kind) for (_, ev), e in zip(decoded, events, strict=True)}
    assert {("created", "order"), ("payment_status_updated", "order"), ("canceled", "cancel")} <= kinds


def test_duplicate_delivery_has_the_same_event_id(wix_url: str, admin: WixAdmin, hooked: Any) -> None:
    site, receiver = hooked
    key = admin.get("/webhooks/public-key")["publicKey"]
    admin.order(site)
    first = wait_for(lambda: [d for d in admin.deliveries(site) if d["state"] == "delivered"])[0]
    again = admin.post(f"/sites/{site['siteId']}/webhooks/deliveries/{first['id']}/duplicate")
    assert again["eventId"] == first["eventId"] and again["duplicateOf"] == first["id"]
    wait_for(lambda: len(receiver.bodies) >= 3)  # created, approved, the duplicate
    events = _parse(wix_url, site, receiver.bodies, key)
    ids = [e.event_id for e in events]
    assert ids.count(first["eventId"]) == 2 and len(set(ids)) == 2


def test_forged_delivery_is_rejected(wix_url: str, admin: WixAdmin, hooked: Any) -> None:
    site, receiver = hooked
    key = admin.get("/webhooks/public-key")["publicKey"]
    order = admin.order(site, events=False)
    forged = admin.post(f"/sites/{site['siteId']}/webhooks/forge", {"orderId": order["id"]})
    assert forged["forged"] is True
    wait_for(lambda: receiver.bodies)
    with pytest.raises(AuthError, match="signature"):
        _parse(wix_url, site, receiver.bodies, key)
    with pytest.raises(AuthError):
        _parse(wix_url, site, [b"not a jwt at all"], key)
    with pytest.raises(ConfigError):
        _parse(wix_url, site, receiver.bodies, "")


def test_retries_until_the_receiver_answers(wix_url: str, admin: WixAdmin) -> None:
    receiver = Receiver(fail_first=2)
    with ServedApp(receiver.app) as served:
        site = admin.site()
        admin.post(f"/sites/{site['siteId']}/webhooks", {"url": served.url + "/hook"})
        admin.order(site, paymentStatus="NOT_PAID", status="PENDING")  # one event: order_created
        delivery = wait_for(lambda: [d for d in admin.deliveries(site) if d["state"] == "delivered"])[0]
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 200]
    assert len(receiver.bodies) == 1


def test_other_instances_are_ignored(wix_url: str, admin: WixAdmin, hooked: Any) -> None:
    site, receiver = hooked
    key = admin.get("/webhooks/public-key")["publicKey"]
    admin.order(site, events=True, paymentStatus="NOT_PAID")
    wait_for(lambda: receiver.bodies)
    mine = _parse(wix_url, site, receiver.bodies[:1], key, webhook_instance_id=site["instanceId"])
    other = _parse(wix_url, site, receiver.bodies[:1], key, webhook_instance_id="another-instance")
    assert mine[0].external_ids and other[0].external_ids == []
    assert mine[0].event_id == other[0].event_id


def test_pem_without_armour_is_accepted(wix_url: str, admin: WixAdmin, hooked: Any) -> None:
    site, receiver = hooked
    pem = admin.get("/webhooks/public-key")["publicKey"]
    bare = "".join(line for line in pem.splitlines() if "-----" not in line)
    admin.order(site, paymentStatus="NOT_PAID")
    wait_for(lambda: receiver.bodies)
    assert _parse(wix_url, site, receiver.bodies[:1], bare)[0].kind == "order"
