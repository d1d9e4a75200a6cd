"""Raw orders read again that the ledger holds as they are.

A poll re-reads many orders that have not changed since they were stored (the cursor's overlap,
and sources such as Houzz that can only find status changes by re-reading every open order).
Mapping each of them again costs a model build per order; comparing a digest of the raw entry
costs a hash. A source hands such entries over unmapped (``ReadEntry``); the engine compares
their digests with the ones stored with the orders (``orders.raw_digest``, written in the
transaction that stores the order, so an order read but not stored is never passed over) and
maps only the rest. Kept in the ledger, not in the process, the digests cost no memory however
many orders are open, survive a restart, and serve every worker of a cluster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orderbridge.connectors.base import DownloadedOrder, DownloadItem


def digest(raw: Any, mapped_with: bytes = b"") -> bytes:
    """A digest of a parsed payload and of what maps it (``mapped_with``: the connection's mapping
    settings, so that a change of them maps every order again): equal payloads (same keys in the
    same order) mapped the same way give equal digests."""
    hashed = hashlib.blake2b(mapped_with, digest_size=16)
    hashed.update(repr(raw).encode("utf-8", "surrogatepass"))
    return hashed.digest()


@dataclass
class ReadEntry:
    """An order as a source read it, not mapped yet: the engine maps it (``item()``) unless the
    window lets it pass over entries the ledger holds exactly as read and this is one."""

    external_id: str
    raw_digest: bytes
    classify: Callable[[], DownloadItem]

    def item(self) -> DownloadItem:
        item = self.classify()
        if isinstance(item, DownloadedOrder):
            item.raw_digest = self.raw_digest  # stored with the order
        return item


def read_entry(external_id: str, raw: Any, classify: Callable[[], DownloadItem], mapped_with: bytes = b"") -> ReadEntry:
    """The entry for this raw order, mapped later by ``classify()`` if need be; ``mapped_with``:
    what ``classify`` maps by (a ``repr`` of the settings it uses), made once per read."""
    return ReadEntry(external_id, digest(raw, mapped_with), classify)
