"""Which raw orders the ledger already holds exactly as a source sent them, and which shipments
it holds already.

A poll re-reads many orders that have not changed since they were stored (the cursor's overlap,
and sources such as Houzz that can only find status changes by re-reading every open order).
Mapping each of them again costs a model build per order; comparing a digest of the raw entry
costs a hash. The engine records a digest only after the transaction that stored the order has
committed, so an order that was read but not stored is never passed over.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from cachetools import LRUCache

from orderbridge.connectors.base import DownloadedOrder, DownloadItem, Window

LIMIT = 250_000  # digests kept per connector instance (about 120 bytes each); the oldest go first
# Shipment ids kept per backend: a poll's look-back re-reads the last couple of minutes, so this
# covers over 100 shipments a second; one read again after it fell out is mapped, not lost.
SHIPMENT_IDS = 25_000


def digest(raw: Any) -> bytes:
    """A digest of a parsed payload: equal payloads (same keys in the same order) give equal digests."""
    return hashlib.blake2b(repr(raw).encode("utf-8", "surrogatepass"), digest_size=16).digest()


class StoredReads:
    def __init__(self, limit: int = LIMIT) -> None:
        self._digests: dict[str, bytes] = {}
        self._limit = limit

    def __len__(self) -> int:
        return len(self._digests)

    def holds(self, external_id: str, raw_digest: bytes) -> bool:
        return self._digests.get(external_id) == raw_digest

    def remember(self, external_id: str, raw_digest: bytes) -> None:
        self._digests.pop(external_id, None)  # re-inserted last: eviction drops the least recently stored
        self._digests[external_id] = raw_digest
        if len(self._digests) > self._limit:
            del self._digests[next(iter(self._digests))]

    def read(self, window: Window, external_id: str, raw: Any,
             classify: Callable[[], DownloadItem]) -> DownloadItem | None:
        """``classify()``'s item for this raw entry, or None when the window allows passing over
        entries the ledger holds as they are and this is one."""
        raw_digest = digest(raw)
        if window.skip_stored and self.holds(external_id, raw_digest):
            return None
        item = classify()
        if isinstance(item, DownloadedOrder):
            item.raw_digest = raw_digest
        return item


class StoredShipments:
    """Ids of a backend's shipments the ledger has recorded. A shipment is recorded once and never
    changed, and a poll's look-back reads each one several times (every poll re-reads its last
    seconds); a scheduled poll passes over the recorded ones instead of mapping each again. The
    engine adds ids only after the transaction that recorded them has committed."""

    def __init__(self, limit: int = SHIPMENT_IDS) -> None:
        self._ids: LRUCache[str, bool] = LRUCache(maxsize=limit)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._ids

    def remember(self, external_ids: list[str]) -> None:
        for external_id in external_ids:
            self._ids[external_id] = True

    def passes_over(self, window: Window, external_id: str) -> bool:
        """True when the window allows passing over recorded shipments and this is one."""
        return window.skip_stored and external_id in self._ids
