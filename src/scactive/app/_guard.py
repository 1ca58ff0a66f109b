"""What the annotation server accepts: requests from its own origin, and bounded, typed bodies.

Security model. Local mode (no token): every request's ``Host`` must be a loopback name, and
a request that changes the session needs an ``Origin`` (or ``Referer``) equal to the server's
own and a JSON body. Remote mode: every request carries the token (:class:`TokenCheck`).
Bodies are read up to :data:`MAX_BODY` bytes, and each field is checked by type and bound.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse

#: The names a local-mode server answers to (any port): a request whose Host is another name
#: comes from a page that rebound its own name to this machine (DNS rebinding).
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
#: Largest request body accepted, in bytes (an answer is about a hundred).
MAX_BODY = 64 * 1024
#: Largest body of a selection labeled at once (``POST /api/label-selection``): the
#: positions of up to about a million cells.
MAX_SELECTION_BODY = 16 * 1024 * 1024
#: Routes that take a larger body than :data:`MAX_BODY`, with their limit.
LARGE_BODIES = {"/api/label-selection": MAX_SELECTION_BODY}
#: Largest answer id accepted (2**53 - 1: the largest whole number JavaScript holds exactly).
MAX_ID = 2**53 - 1
#: Largest batch the page may ask for.
MAX_BATCH = 500
#: Methods that read only; every other method changes the session.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(host: str) -> str:
    """The name of a ``Host`` header without its port (``[::1]:8765`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class SameOrigin:
    """Refuse requests from other web origins, before any route runs (a pure ASGI layer).

    - ``Host`` must be one of ``hosts`` (when given): a page elsewhere that rebinds its own
      name to 127.0.0.1 sends its own name, and is refused (403).
    - A state-changing request (any method but GET/HEAD/OPTIONS) needs ``Origin`` (or, when a
      browser leaves it out, ``Referer``) equal to this server's own origin, and a JSON body
      (``Content-Type: application/json``): a form or ``text/plain`` post from another page
      is refused. Without either header it is refused too, unless ``need_origin`` is False
      (token mode, where the token already proves the caller).
    - A body announced larger than :data:`MAX_BODY` (a route of :data:`LARGE_BODIES`: its
      limit) gets 413.
    """

    def __init__(self, app, *, hosts: frozenset[str] | None, need_origin: bool) -> None:
        self.app = app
        self.hosts = hosts
        self.need_origin = need_origin

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        problem = self._check(scope)
        if problem is not None:
            message, status = problem
            return await error_reply(message, status)(scope, receive, send)
        return await self.app(scope, receive, send)

    def _check(self, scope) -> tuple[str, int] | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return (
                f"This server answers only to its local address (Host {host[:80]!r} refused); "
                f"open it as http://127.0.0.1:<port>/.",
                403,
            )
        if scope["method"] in _SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is None and headers.get("referer"):
            parts = urlsplit(headers["referer"])
            origin = f"{parts.scheme}://{parts.netloc}"
        if origin is None:
            if self.need_origin:
                return (
                    "A request that changes the session must say where it comes from (Origin "
                    "header); the page does. Scripts: send 'Origin: http://<this address>', or "
                    "use scactive teach on the session file.",
                    403,
                )
        elif not same_origin(origin, f"{scope.get('scheme', 'http')}://{host}"):
            return (f"Requests from another web origin ({origin[:80]!r}) are refused.", 403)
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return (
                f"A request that changes the session needs 'Content-Type: application/json'; "
                f"got {media_type[:60]!r}.",
                415,
            )
        length = headers.get("content-length")
        limit = LARGE_BODIES.get(scope.get("path", ""), MAX_BODY)
        if length is not None and (not length.isdigit() or int(length) > limit):
            return (f"The request body is larger than {limit} bytes.", 413)
        return None


#: The port of a URL scheme when the URL gives none.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(origin: str, own: str) -> bool:
    """Whether ``origin`` (an Origin header) is the server's ``own`` (its scheme and Host):
    scheme, host and port all equal."""
    mine = _origin(own)
    return mine is not None and _origin(origin) == mine


def _origin(url: str) -> tuple[str, str, int] | None:
    """A web origin's scheme, host and port (the scheme's default when not given), None for
    anything else (``null``, another scheme, a malformed port): two requests share an
    origin only when all three agree."""
    parts = urlsplit(url.strip().lower())
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme]


class TokenCheck(BaseHTTPMiddleware):
    """Every request must carry the token: ``Authorization: Bearer``, ``?token=``, or the
    cookie set when the page was opened with ``?token=`` (so its scripts load too)."""

    cookie = "scactive_token"

    def __init__(self, app, token: str) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next):
        in_query = request.query_params.get("token")
        given = in_query or request.cookies.get(self.cookie, "")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            given = header[7:].strip()
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return JSONResponse({"error": "missing or wrong token"}, status_code=401)
        response = await call_next(request)
        if in_query:
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict")
        return response


def error_reply(message: str, status: int = 400) -> JSONResponse:
    # a message may quote what the client sent: keep it encodable (lone surrogates escaped)
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": text}, status_code=status)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


async def json_body(
    request: Request, fields: Iterable[str], *, limit: int = MAX_BODY
) -> dict[str, Any]:
    """The request's JSON object, read up to ``limit`` bytes; other keys than ``fields`` are
    refused."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"The request body is larger than {limit} bytes.", 413)
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks), parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:  # RecursionError: nested too deeply
        detail = str(err)[:120] if isinstance(err, ValueError) else "nested too deeply"
        raise BadRequest(f"The body is not valid JSON ({detail}).") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object, such as {}.")
    fields = tuple(fields)
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise BadRequest(
            f"Unknown field {unknown[0][:40]!r}; this request takes "
            f"{', '.join(map(repr, fields)) or 'no fields'}."
        )
    return body


def text_field(body: dict, key: str, *, default: Any = None, max_length: int = 1000) -> Any:
    """``body[key]``: text (not over ``max_length``), or ``default`` when absent or null."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be text; got {type(value).__name__}.")
    if len(value) > max_length:
        raise BadRequest(f"'{key}' is longer than {max_length} characters.")
    return value


def whole_field(body: dict, key: str, *, low: int, high: int, default: Any = None) -> Any:
    """``body[key]``: a whole number from ``low`` to ``high`` (true/false are not numbers)."""
    value = body.get(key)
    if value is None:
        return default
    if type(value) is not int or not low <= value <= high:
        raise BadRequest(
            f"'{key}' must be a whole number from {low} to {high}; got {json.dumps(value)[:40]}."
        )
    return value


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
