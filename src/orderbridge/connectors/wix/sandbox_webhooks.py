"""Wix sandbox: webhooks as Wix sends them — RS256 JWTs with the event nested three levels deep.

``claims.data`` is a JSON string ``{eventType, instanceId, data, identity}`` whose ``data`` is again a
JSON string: the domain event ``{id, entityFqdn, slug, entityId, eventTime, createdEvent |
updatedEvent | actionEvent}``. The event is frozen when it happens (later changes to the order do
not leak into it). Each delivery is POSTed from a background task and retried on a schedule until
the receiver answers 2xx in time; every attempt is kept for the admin surface.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import OrderedDict
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from orderbridge.connectors.wix.sandbox_orders import WixApiError, iso
from orderbridge.connectors.wix.sandbox_store import Event, Site, Store, now

SANDBOX_APP_ID = "0a6e9ec6-7d3c-4a3b-9d9f-5a1c0b5d1e2f"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Webhooks:
    def __init__(self, store: Store, options: dict[str, Any]) -> None:
        pem = options.get("webhook_private_key_pem")
        loaded = serialization.load_pem_private_key(pem.encode(), password=None) if pem else _new_key()
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError("webhook_private_key_pem must be an RSA private key")
        self.key: rsa.RSAPrivateKey = loaded
        self.public_pem = public_pem(self.key)
        self._forger: rsa.RSAPrivateKey | None = None
        self.retry_delays = [float(d) for d in options.get("webhook_retry_delays", [1, 10, 60, 300, 1800])]
        self.timeout = float(options.get("webhook_timeout", 1.25))
        self.content_type = str(options.get("webhook_content_type", "text/plain"))
        self.keep = int(options.get("webhook_keep", 10_000))
        self.by_site: dict[str, OrderedDict[str, dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.store = store
        store.listeners.append(self.on_event)

    # ------------------------------------------------------------------------------ signing
    def domain_event(self, event: Event) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "entityFqdn": event["entityFqdn"], "slug": event["slug"],
                "entityId": event["entityId"], "eventTime": iso(now()), "triggeredByAnonymizeRequest": False,
                event["bodyKey"]: event["body"]}

    def claims(self, site: Site, event_type: str, domain: dict[str, Any]) -> dict[str, Any]:
        """Serialised now: the event shows the order as it was when it happened."""
        envelope = {"eventType": event_type, "instanceId": site.instance_id, "data": json.dumps(domain),
                    "identity": json.dumps({"identityType": "APP", "appId": SANDBOX_APP_ID})}
        return {"data": json.dumps(envelope), "iat": int(time.time())}

    def sign(self, claims: dict[str, Any], forged: bool = False) -> str:
        key = self.key
        if forged:
            self._forger = key = self._forger or _new_key()
        return jwt.encode(claims, key, algorithm="RS256")

    def on_event(self, site: Site, event: Event) -> None:
        domain = self.domain_event(event)
        self.deliver(site, event["eventType"], domain, self.claims(site, event["eventType"], domain))

    def forge(self, site: Site, event: Event) -> dict[str, Any]:
        domain = self.domain_event(event)
        return self.deliver(site, event["eventType"], domain, self.claims(site, event["eventType"], domain),
                            forged=True)

    # ----------------------------------------------------------------------------- delivery
    def deliver(self, site: Site, event_type: str, domain: dict[str, Any], claims: dict[str, Any] | str, *,
                forged: bool = False, duplicate_of: str = "") -> dict[str, Any]:
        """Record a delivery and start it. ``claims`` is signed at once when there is a URL, else
        only when the record is read (signing costs a millisecond; bulk seeding skips it)."""
        record: dict[str, Any] = {
            "id": str(uuid.uuid4()), "siteId": site.site_id, "eventId": domain["id"], "eventType": event_type,
            "entityId": domain.get("entityId", ""), "url": site.webhook_url, "forged": forged,
            "duplicateOf": duplicate_of, "createdAt": iso(now()), "attempts": [],
            "state": "pending" if site.webhook_url else "no_url",
            "jwt": claims if isinstance(claims, str) else None,
        }
        if record["jwt"] is None:
            record["_claims"] = claims
            if site.webhook_url:
                self._signed(record)
        kept = self.by_site.setdefault(site.site_id, OrderedDict())
        kept[record["id"]] = record
        if len(kept) > self.keep:  # only the latest deliveries of a site are kept
            kept.popitem(last=False)
        if site.webhook_url:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # state built before serving (options): nobody to tell
                record["state"] = "not_sent"
                return record
            task = loop.create_task(self._run(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return record

    def _signed(self, record: dict[str, Any]) -> dict[str, Any]:
        if record.get("jwt") is None:
            record["jwt"] = self.sign(record.pop("_claims"), forged=record["forged"])
        return record

    def duplicate(self, site: Site, delivery_id: str) -> dict[str, Any]:
        original = self.by_site.get(site.site_id, OrderedDict()).get(delivery_id)
        if original is None:
            raise WixApiError(404, f"delivery {delivery_id} not found", "NOT_FOUND")
        domain = {"id": original["eventId"], "entityId": original["entityId"]}
        return self.public(self.deliver(site, original["eventType"], domain, self._signed(original)["jwt"],
                                        forged=original["forged"], duplicate_of=delivery_id))

    async def _run(self, record: dict[str, Any]) -> None:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            for delay in [0.0, *self.retry_delays]:
                if delay:
                    await asyncio.sleep(delay)
                status, error = 0, ""
                try:
                    resp = await client.post(record["url"], content=record["jwt"],
                                             headers={"Content-Type": self.content_type})
                    status = resp.status_code
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                record["attempts"].append({"at": iso(now()), "status": status, "error": error})
                if 200 <= status < 300:
                    record["state"] = "delivered"
                    return
        record["state"] = "failed"

    def public(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in self._signed(record).items() if not k.startswith("_")}

    def listing(self, site: Site, limit: int = 1000) -> list[dict[str, Any]]:
        """The latest ``limit`` deliveries, oldest first."""
        records = list(self.by_site.get(site.site_id, OrderedDict()).values())
        return [self.public(r) for r in records[-limit:]] if limit > 0 else []
