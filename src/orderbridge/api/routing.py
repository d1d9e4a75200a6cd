"""The route table: one Endpoint per operation, from which both the Starlette routes and the
OpenAPI description are built (so the description cannot drift from the code)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from orderbridge.api.auth import Scope
from orderbridge.api.settings import ApiSettings
from orderbridge.engine.hub import Hub

# Path parameters that may hold '/' once URL-decoded (cust_refs and SKUs are free text).
FREE_TEXT_PARAMS = ("cust_ref", "sku")


@dataclass
class Call:
    request: Request
    hub: Hub
    settings: ApiSettings
    scope: Scope
    body: Any = None

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])


Handler = Callable[[Call], JSONResponse]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # as in OpenAPI, relative to /v1: /cart/orders/{cust_ref}
    handler: Handler
    level: str  # see orderbridge.api.auth
    summary: str
    tag: str
    query: tuple[str, ...] = ()
    body: str | None = None  # the request body's schema (components), when there is one
    response: str | None = None  # the schema of a success answer (components)
    rate_limited: bool = True
    extension: bool = False  # an orderbridge extension: not in CartRover's public documentation
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def starlette_path(self) -> str:
        names = "|".join(FREE_TEXT_PARAMS)
        return re.sub(rf"\{{({names})\}}", r"{\1:path}", self.path)

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)

    @property
    def operation_id(self) -> str:
        words = re.sub(r"\{\w+\}", "", self.path).strip("/").replace("/", "_")
        return f"{self.method.lower()}_{re.sub(r'_+', '_', words).strip('_')}"
