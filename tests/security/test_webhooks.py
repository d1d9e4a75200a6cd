"""Signed webhooks through the web app: forged, tampered, replayed and stale deliveries are refused."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from orderbridge.config import AppConfig
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.connectors.wix.sandbox import create_app as wix_sandbox
from orderbridge.ledger import schema as t
from orderbridge.web.app import MAX_WEBHOOK_BYTES, create_app

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def wix() -> Iterator[tuple[str, dict[str, Any], str]]:
    """A Wix sandbox with one site and one order: (url, site, order id)."""
    with ServedApp(wix_sandbox({"demo_site": False, "webhook_retry_delays": []})) as served:
        admin = httpx.Client(base_url=served.url + "/__sandbox__")
        site = admin.post("/sites", json={"siteId": str(uuid.uuid4())}).json()
        admin.post(f"/sites/{site['siteId']}/products", json={"products": [
            {"name": "Mug", "sku": "MUG-1", "price": "12.00", "quantity": 50}]}).raise_for_status()
        order = admin.post(f"/sites/{site['siteId']}/orders", json={"lines": [
            {"sku": "MUG-1", "quantity": 1, "price": "12.00"}]}).json()["order"]
        yield served.url, site, order["id"]


def token(order_id: str, *, event_id: str | None = None, iat: float | None = None, key: Any = KEY) -> bytes:
    domain = {"id": event_id or str(uuid.uuid4()), "entityFqdn": "wix.ecom.v1.order", "slug": "created",
              "entityId": order_id, "createdEvent": {"entity": {"id": order_id}}}
    envelope = {"eventType": "wix.ecom.v1.order_created", "instanceId": "i-1", "data": json.dumps(domain),
                "identity": json.dumps({"identityType": "APP"})}
    claims: dict[str, Any] = {"data": json.dumps(envelope)}
    if iat is not None:
        claims["iat"] = int(iat)
    return jwt.encode(claims, key, algorithm="RS256").encode()


def test_forged_tampered_replayed_and_stale_deliveries_are_refused(
        make_hub: Any, wix: tuple[str, dict[str, Any], str]) -> None:
    url, site, order_id = wix
    hub = make_hub(AppConfig.model_validate({
        "merchants": [{"name": "acme"}],
        "connections": [{"name": "acme-wix", "merchant": "acme", "type": "wix", "test_mode": True, "base_url": url,
                         "credentials": {"api_key": site["apiKey"], "site_id": site["siteId"],
                                         "webhook_public_key": PEM}}]}))
    now = time.time()
    with ServedApp(create_app(hub, with_runner=False)) as web:
        hook = web.url + "/webhooks/acme-wix"

        def post(body: bytes) -> httpx.Response:
            return httpx.post(hook, content=body, headers={"content-type": "text/plain"}, timeout=30)

        first = token(order_id, event_id="evt-1", iat=now)
        accepted = post(first)
        assert accepted.status_code == 200 and accepted.json()["orders"] == {order_id: "new"}
        replayed = post(first)  # the same delivery again (a retry, or someone replaying it)
        assert replayed.status_code == 200 and replayed.json()["duplicate"] is True
        resigned = post(token(order_id, event_id="evt-1", iat=now + 5))  # same event, a later delivery
        assert resigned.json()["duplicate"] is True

        refused = {
            "forged": post(token(order_id, key=OTHER, iat=now)),
            "stale": post(token(order_id, iat=now - 73 * 3600)),
            "future": post(token(order_id, iat=now + 3600)),
            "tampered": post(_tamper(token(order_id, iat=now))),
            "not a token": post(b"hello"),
            "empty": post(b""),
        }
        too_big = post(b"x" * (MAX_WEBHOOK_BYTES + 1))

        def endless() -> Iterator[bytes]:  # chunked, no length announced: cut off at the limit
            for _ in range(MAX_WEBHOOK_BYTES // 65536 + 2):
                yield b"y" * 65536

        streamed = httpx.post(hook, content=endless(), timeout=30)
        within_window = post(token(order_id, event_id="evt-2", iat=now - 47 * 3600))  # Wix still retrying
    for why, response in refused.items():
        assert response.status_code == 401, (why, response.text)
        assert response.json()["error"], why
    assert "replayed" in refused["stale"].json()["error"]
    assert "signature" in refused["forged"].json()["error"]
    assert too_big.status_code == 413 and "too large" in too_big.json()["error"]
    assert streamed.status_code == 413
    assert within_window.status_code == 200 and within_window.json()["duplicate"] is False
    with hub.db.connect() as conn:
        events = conn.execute(sa.select(t.webhook_events.c.event_id)).scalars().all()
        orders = conn.execute(sa.select(t.orders.c.external_id)).scalars().all()
    assert sorted(events) == ["evt-1", "evt-2"]  # nothing refused left a trace
    assert orders == [order_id]


def _tamper(body: bytes) -> bytes:
    header, payload, signature = body.split(b".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["data"] = claims["data"].replace("order_created", "order_canceled")
    forged_payload = jwt.utils.base64url_encode(json.dumps(claims).encode())
    return b".".join([header, forged_payload, signature])
