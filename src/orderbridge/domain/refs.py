"""``cust_ref``: a short, backend-safe, unique reference derived from the full order number.

The rule is deterministic: candidate 0 is the order number itself when it already fits the
route's length and character limits; otherwise, and for candidates 1, 2, ... (used only when a
previous candidate is taken by another order in the same backend), a readable prefix is kept
and a hash of (source connection, order number, candidate index) is appended.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_HASH_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


@dataclass(frozen=True)
class RefRule:
    max_length: int = 50
    allowed: str = "A-Za-z0-9-_"  # a regex character class body
    prefix: str = ""

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise ValueError("cust_ref max_length must be at least 8 characters")
        try:
            re.compile(f"[{self.allowed}]")
        except re.error as exc:
            raise ValueError(f"cust_ref allowed characters {self.allowed!r} are not a valid class: {exc}") from exc
        if len(self.alphabet()) < 10:
            raise ValueError(
                f"cust_ref allowed characters {self.allowed!r} must include at least 10 of 0-9 and A-Z"
            )

    def alphabet(self) -> str:
        pattern = re.compile(f"[{self.allowed}]")
        return "".join(c for c in _HASH_ALPHABET if pattern.fullmatch(c))

    def sanitize(self, text: str) -> str:
        return re.sub(f"[^{self.allowed}]", "", text)


def _digest(seed: str, alphabet: str, length: int) -> str:
    n = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


def cust_ref_candidate(cust_po_no: str, source_key: str, rule: RefRule, index: int = 0) -> str:
    """Return candidate ``index`` of the reference for an order number."""
    body = rule.prefix + cust_po_no
    clean = rule.sanitize(body)
    if index == 0 and clean == body and 0 < len(clean) <= rule.max_length:
        return clean
    hash_len = min(10, rule.max_length)  # 10 chars = 50 bits: collisions need ~2**25 orders sharing a prefix
    sep = "-" if re.fullmatch(f"[{rule.allowed}]", "-") else ""
    keep = max(0, rule.max_length - hash_len - len(sep))
    head = clean[:keep]
    tail = _digest(f"{source_key}\x00{cust_po_no}\x00{index}", rule.alphabet(), hash_len)
    return f"{head}{sep}{tail}" if head else tail
