"""Login, sessions, CSRF and the two kinds of handler every page module uses.

Sessions are Starlette's signed cookies (itsdangerous) that expire after ``max_age`` seconds without
a request. A session names the user and a fingerprint of their password hash, so changing the
password or deleting the user ends every open session. Every POST carries the session's CSRF token
in a form field; ``action`` checks it before the handler runs, so no form can forget it.
"""

from __future__ import annotations

import hmac
import inspect
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from orderbridge.engine.hub import Hub
from orderbridge.engine.users import User, authenticate, count_users, get_user
from orderbridge.web.dashboard.render import render
from orderbridge.web.dashboard.throttle import LoginThrottle

CSRF_FIELD = "csrf_token"


@dataclass
class Ctx:
    """One request as a page sees it: who asks, the hub, the submitted form."""

    request: Request
    hub: Hub
    user: User
    form: FormData | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return str(self.request.scope.get("root_path", "")).rstrip("/")

    def url(self, path: str) -> str:
        return self.base + path

    def flash(self, text: str, kind: str = "ok") -> None:
        self.request.session.setdefault("flash", []).append([kind, text])

    def redirect(self, path: str) -> RedirectResponse:
        return RedirectResponse(self.url(path), status_code=303)

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else self.request.query_params.get(name)
        return value.strip() if isinstance(value, str) else default

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        flashes = self.request.session.pop("flash", [])
        return render(template, status_code, user=self.user, base=self.base, csrf=csrf_token(self.request),
                      flashes=flashes, path=self.request.url.path.removeprefix(self.base), **context)


Handler = Callable[[Ctx], Response | Awaitable[Response]]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def _csrf_ok(request: Request, form: FormData) -> bool:
    sent, kept = form.get(CSRF_FIELD), request.session.get("csrf")
    return isinstance(sent, str) and bool(kept) and hmac.compare_digest(sent, str(kept))


def _current_user(request: Request, hub: Hub) -> User | None:
    uid, fp = request.session.get("uid"), request.session.get("fp")
    if not isinstance(uid, int):
        return None
    user = get_user(hub.db, uid)
    if user is None or not hmac.compare_digest(user.fingerprint, str(fp)):
        request.session.clear()  # password changed or user deleted: this session is over
        return None
    return user


def _to_login(request: Request) -> Response:
    base = str(request.scope.get("root_path", "")).rstrip("/")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{base}/login?next={quote(target)}", status_code=303)


async def _call(handler: Handler, ctx: Ctx) -> Response:
    if inspect.iscoroutinefunction(handler):
        return await handler(ctx)
    return await run_in_threadpool(handler, ctx)  # type: ignore[arg-type]  # sync handlers query the ledger


def page(hub: Hub, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A GET page: the user must be logged in."""

    async def endpoint(request: Request) -> Response:
        user = await run_in_threadpool(_current_user, request, hub)
        if user is None:
            return _to_login(request)
        return await _call(handler, Ctx(request, hub, user))

    return endpoint


def forbidden_form(request: Request) -> Response:
    return render("message.html", 403, title="Form rejected", user=None, base="", csrf="", flashes=[],
                  path="", message="This form has expired or did not come from this site (its security token "
                  "is missing or wrong).", fix="Go back, reload the page and submit it again.")


def action(hub: Hub, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A POST: logged in, and the form's CSRF token must match the session's."""

    async def endpoint(request: Request) -> Response:
        form = await request.form(max_part_size=5 * 1024 * 1024)
        if not _csrf_ok(request, form):
            return forbidden_form(request)
        user = await run_in_threadpool(_current_user, request, hub)
        if user is None:
            return _to_login(request)
        return await _call(handler, Ctx(request, hub, user, form=form))

    return endpoint


# ------------------------------------------------------------------------------- login / logout


def _safe_next(base: str, value: str | None) -> str:
    """Only paths inside the dashboard: a login link must not send anyone elsewhere."""
    if value and value.startswith(base + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return base + "/"


def _login_page(request: Request, hub: Hub, status: int = 200, error: str = "", fix: str = "") -> Response:
    base = str(request.scope.get("root_path", "")).rstrip("/")
    return render("login.html", status, user=None, base=base, csrf=csrf_token(request), flashes=[], path="/login",
                  error=error, fix=fix, next=request.query_params.get("next", ""), no_users=count_users(hub.db) == 0)


def login_routes(hub: Hub, throttle: LoginThrottle | None = None,
                 ) -> tuple[Callable[[Request], Awaitable[Response]], ...]:
    throttle = throttle or LoginThrottle.from_env()

    async def login_form(request: Request) -> Response:
        return await run_in_threadpool(_login_page, request, hub)

    async def login(request: Request) -> Response:
        form = await request.form()
        if not _csrf_ok(request, form):
            return forbidden_form(request)
        username, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
        address = request.client.host if request.client else ""
        lock = throttle.locked(username, address)
        if lock is not None:  # refused before the password is even looked at
            response = await run_in_threadpool(
                _login_page, request, hub, 429, lock.message,
                "Wait until then. If the password is lost, an administrator can set a new one with "
                "`orderbridge users passwd NAME`.")
            response.headers["Retry-After"] = str(max(1, round(lock.seconds)))
            return response
        user = await run_in_threadpool(authenticate, hub.db, username, password)
        if user is None:
            throttle.failed(username, address)
            return await run_in_threadpool(_login_page, request, hub, 401, "Wrong user name or password.")
        throttle.succeeded(username)
        request.session.clear()  # a fresh session (and CSRF token) at every login
        request.session.update(uid=user.id, fp=user.fingerprint, csrf=secrets.token_urlsafe(32))
        base = str(request.scope.get("root_path", "")).rstrip("/")
        return RedirectResponse(_safe_next(base, str(form.get("next") or "")), status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not _csrf_ok(request, form):
            return forbidden_form(request)
        request.session.clear()
        base = str(request.scope.get("root_path", "")).rstrip("/")
        return RedirectResponse(f"{base}/login", status_code=303)

    return login_form, login, logout
