"""Bearer-token authentication for the admin API.

``MESDASH_API_TOKENS`` is a comma-separated list of ``sha256hex:role`` (roles ``admin`` and
``viewer``): the operator stores only the SHA-256 of each token. A request's bearer token is
hashed and compared with every configured hash in constant time (``hmac.compare_digest``).
There is no default token: without configuration every admin call is 401.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from fastapi import Request

from mesdash.core.resilience.errors import Forbidden, Unauthorized
from mesdash.settings import get_settings

log = logging.getLogger(__name__)
ROLES = ("admin", "viewer")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Principal:
    """Who called: the token's role and the first 8 hex digits of its hash (for the audit)."""

    role: str
    token_id: str

    @property
    def label(self) -> str:
        return f"{self.role}:{self.token_id}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@lru_cache(maxsize=8)
def parse_tokens(spec: str) -> tuple[tuple[str, str], ...]:
    """``(sha256hex, role)`` pairs; malformed entries are skipped with a warning."""
    out: list[tuple[str, str]] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        digest, _, role = entry.partition(":")
        digest, role = digest.strip().lower(), role.strip().lower()
        if not _HEX64.match(digest) or role not in ROLES:
            log.warning("MESDASH_API_TOKENS: ignoring an entry that is not sha256hex:admin|viewer")
            continue
        out.append((digest, role))
    return tuple(out)


def authenticate(authorization: str | None, spec: str) -> Principal:
    """The principal of an ``Authorization: Bearer …`` header; raises 401."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("authentication required: send an Authorization header (Bearer <token>)")
    presented = hash_token(token)
    found: str | None = None
    for digest, role in parse_tokens(spec):  # no early exit: every entry is compared
        if hmac.compare_digest(presented, digest) and found is None:
            found = role
    if found is None:
        raise Unauthorized("unknown token")
    return Principal(found, presented[:8])


def require_admin(request: Request) -> Principal:
    """FastAPI dependency: an admin principal, or 401 / 403."""
    principal = authenticate(request.headers.get("authorization"), get_settings().api_tokens)
    if principal.role != "admin":
        raise Forbidden("this endpoint needs an admin token")
    return principal
