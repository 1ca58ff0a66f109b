"""The annotation web service: a JSON API over a :class:`~scactive.app.Session` and one page.

Every answer goes straight to the session's store (committed before the reply), so stopping
the server at any moment loses nothing. Retraining runs in a background thread; the page polls
``/api/state`` and shows the next batch when it is ready.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import torch
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .._errors import InputError
from ._store import UnknownCellError

logger = logging.getLogger("scactive")

#: The names a local-mode server answers to (any port): a request whose Host is another name
#: comes from a page that rebound its own name to this machine (DNS rebinding).
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
#: Largest request body accepted, in bytes (an answer is about a hundred).
MAX_BODY = 64 * 1024
#: Largest answer id accepted (2**53 - 1: the largest whole number JavaScript holds exactly).
MAX_ID = 2**53 - 1
#: Largest batch the page may ask for.
MAX_BATCH = 500
#: Methods that read only; every other method changes the session.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


class _Trainer:
    """Retrains the model and prepares the next batch in a background thread."""

    def __init__(self, session, *, batch_size: int, strategy: str) -> None:
        self.session = session
        self.batch_size = batch_size
        self.strategy = strategy
        self.lock = threading.Lock()
        self.batch: list[str] = []
        self.running = False
        self.error: str | None = None
        self.started = 0.0
        self.seconds: float | None = None
        self._thread: threading.Thread | None = None

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "training": self.running,
                "error": self.error,
                "last_seconds": self.seconds,
                "running_seconds": time.monotonic() - self.started if self.running else None,
                "batch": list(self.batch),
                "strategy": self.strategy,
                "batch_size": self.batch_size,
            }

    def pending(self) -> list[str]:
        """Cells of the current batch that still have no answer."""
        answered = set(self.session.labels()["cell"])
        with self.lock:
            return [c for c in self.batch if c not in answered]

    def start(self, *, strategy: str | None = None, batch_size: int | None = None) -> bool:
        """Retrain and pick the next batch in the background; False if already running."""
        with self.lock:
            if self.running:
                return False
            if strategy is not None:
                self.strategy = strategy
            if batch_size is not None:
                self.batch_size = batch_size
            self.running, self.error, self.started = True, None, time.monotonic()
            self._thread = threading.Thread(target=self._work, daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _work(self) -> None:
        try:
            try:
                if self.session.stale:  # a new round only when the labels changed
                    self.session.train()
            except InputError as err:  # too few labels to train: cold-start batches go on
                logger.info("not retrained: %s", err)
            batch = self.session.next_batch(self.batch_size, strategy=self.strategy)
            with self.lock:
                self.batch = list(batch)
        except Exception as err:  # noqa: BLE001 - reported to the page, the server goes on
            logger.exception("retraining failed")
            with self.lock:
                self.error = f"{type(err).__name__}: {err}"
        finally:
            with self.lock:
                self.running = False
                self.seconds = time.monotonic() - self.started


def _host_name(host: str) -> str:
    """The name of a ``Host`` header without its port (``[::1]:8765`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class _SameOrigin:
    """Refuse requests from other web origins, before any route runs (a pure ASGI layer).

    - ``Host`` must be one of ``hosts`` (when given): a page elsewhere that rebinds its own
      name to 127.0.0.1 sends its own name, and is refused (403).
    - A state-changing request (any method but GET/HEAD/OPTIONS) needs ``Origin`` (or, when a
      browser leaves it out, ``Referer``) equal to this server's own origin, and a JSON body
      (``Content-Type: application/json``): a form or ``text/plain`` post from another page
      is refused. Without either header it is refused too, unless ``need_origin`` is False
      (token mode, where the token already proves the caller).
    - A body announced larger than :data:`MAX_BODY` gets 413.
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
            return await _error(message, status)(scope, receive, send)
        return await self.app(scope, receive, send)

    def _check(self, scope) -> tuple[str, int] | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.hosts is not None and _host_name(host) not in self.hosts:
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
        elif urlsplit(origin).netloc.lower() != host.lower() or not origin.startswith("http"):
            return (f"Requests from another web origin ({origin[:80]!r}) are refused.", 403)
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return (
                f"A request that changes the session needs 'Content-Type: application/json'; "
                f"got {media_type[:60]!r}.",
                415,
            )
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return (f"The request body is larger than {MAX_BODY} bytes.", 413)
        return None


class _TokenCheck(BaseHTTPMiddleware):
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


def _error(message: str, status: int = 400) -> JSONResponse:
    # a message may quote what the client sent: keep it encodable (lone surrogates escaped)
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": text}, status_code=status)


def _clean(value: Any) -> Any:
    """JSON-safe values: NaN becomes null, numpy scalars become Python ones."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


async def _json_body(request: Request, fields: Iterable[str]) -> dict[str, Any]:
    """The request's JSON object, read up to :data:`MAX_BODY` bytes; other keys than
    ``fields`` are refused."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _BadRequest(f"The request body is larger than {MAX_BODY} bytes.", 413)
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks), parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:  # RecursionError: nested too deeply
        detail = str(err)[:120] if isinstance(err, ValueError) else "nested too deeply"
        raise _BadRequest(f"The body is not valid JSON ({detail}).") from None
    if not isinstance(body, dict):
        raise _BadRequest("The body must be a JSON object, such as {}.")
    fields = tuple(fields)
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise _BadRequest(
            f"Unknown field {unknown[0][:40]!r}; this request takes "
            f"{', '.join(map(repr, fields)) or 'no fields'}."
        )
    return body


def _text(body: dict, key: str, *, default: Any = None, max_length: int = 1000) -> Any:
    """``body[key]``: text (not over ``max_length``), or ``default`` when absent or null."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _BadRequest(f"'{key}' must be text; got {type(value).__name__}.")
    if len(value) > max_length:
        raise _BadRequest(f"'{key}' is longer than {max_length} characters.")
    return value


def _whole(body: dict, key: str, *, low: int, high: int, default: Any = None) -> Any:
    """``body[key]``: a whole number from ``low`` to ``high`` (true/false are not numbers)."""
    value = body.get(key)
    if value is None:
        return default
    if type(value) is not int or not low <= value <= high:
        raise _BadRequest(
            f"'{key}' must be a whole number from {low} to {high}; got {json.dumps(value)[:40]}."
        )
    return value


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def create_app(
    session,
    *,
    token: str | None = None,
    batch_size: int = 20,
    strategy: str = "entropy",
    hosts: Iterable[str] | None = None,
) -> Starlette:
    """The Starlette application serving ``session``.

    Parameters
    ----------
    session
        An open :class:`scactive.app.Session`.
    token
        When set, every request must carry it (needed when serving beyond localhost).
    batch_size, strategy
        The first batch's size and strategy; the page can change both.
    hosts
        The names the server answers to (``Host`` header, any port). Default: the loopback
        names without a token, any name with one (the token guards every request).

    Security model: without a token the server trusts only its own loopback origin (Host a
    loopback name, state-changing requests same-origin JSON); with one, every request must
    carry the token. See :class:`_SameOrigin`.
    """
    if type(batch_size) is not int or not 1 <= batch_size <= MAX_BATCH:
        raise InputError(f"batch_size={batch_size!r}; expected a whole number from 1 to 500.")
    if strategy not in _strategies():
        raise InputError(f"Unknown strategy {strategy!r}; valid: {sorted(_strategies())}.")
    if hosts is None:
        hosts = None if token else LOOPBACK_NAMES
    allowed = None if hosts is None else frozenset(_host_name(h) for h in hosts)
    # One torch thread: the small network trains faster so on 2 cores than with two threads
    # competing with the server's own (1.4 s against 2.0 s per batch at 30,000 cells).
    torch.set_num_threads(1)
    trainer = _Trainer(session, batch_size=batch_size, strategy=strategy)

    async def index(request: Request) -> Response:
        page = files("scactive.app").joinpath("static", "index.html").read_text("utf-8")
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return _error(f"no such file: {name[:80]!r}", 404)
        body = files("scactive.app").joinpath("static", name).read_text("utf-8")
        return Response(body, media_type=_STATIC[name])

    async def state(request: Request) -> Response:
        status = session.status()
        batch = trainer.state()
        answers = session.labels().set_index("cell")
        answered = [c for c in batch["batch"] if c in answers.index]
        shown = answers.loc[answered]
        out = {
            **status,
            **batch,
            "pending": [c for c in batch["batch"] if c not in answers.index],
            "vocabulary": [v["label"] for v in status["vocabulary"]],
            "cv_accuracy_history": [r["cv_accuracy"] for r in status["cv_history"]],
            "batch_answers": {
                cell: row.label if row.kind == "label" else row.kind
                for cell, row in shown.iterrows()
            },
            "strategies": sorted(_strategies()),
        }
        return JSONResponse(_clean(out))

    async def embedding(request: Request) -> Response:
        table = session.embedding().set_index("cell")
        answers = session.labels().set_index("cell")
        table["label"] = answers["label"].reindex(table.index)
        predictions = session.predictions()
        if len(predictions):
            predictions = predictions.set_index("cell").reindex(table.index)
            table["predicted"] = predictions["predicted"]
            table["confidence"] = predictions["confidence"]
        else:
            table["predicted"] = None
            table["confidence"] = np.nan
        columns = {
            "cell": table.index.tolist(),
            "x": table["umap1"].to_numpy(float),
            "y": table["umap2"].to_numpy(float),
            "label": table["label"].astype(object).where(table["label"].notna(), None).tolist(),
            "predicted": table["predicted"]
            .astype(object)
            .where(table["predicted"].notna(), None)
            .tolist(),
            "confidence": table["confidence"].to_numpy(float),
            "round": session.status()["round"],
        }
        return JSONResponse(_clean(columns))

    async def evidence(request: Request) -> Response:
        return JSONResponse(_clean(session.cell_evidence(request.path_params["cell"])))

    async def answer(request: Request) -> Response:
        body = await _json_body(request, ("cell", "label", "kind"))
        cell = _text(body, "cell")
        if cell is None:
            raise _BadRequest("'cell' must be text: the id of the cell answered.")
        kind = _text(body, "kind", default="label", max_length=40)
        label = _text(body, "label", max_length=10_000)
        answer_id = session.answer(cell, label, kind=kind)  # validates cell, kind and label
        if not trainer.pending() and not trainer.running:
            trainer.start()
        return JSONResponse({"id": answer_id, "pending": trainer.pending()})

    async def undo(request: Request) -> Response:
        # with an id, this tab's own answer: several tabs on one session undo their own
        body = await _json_body(request, ("id",))
        undone = session.undo(_whole(body, "id", low=1, high=MAX_ID))
        return JSONResponse(_clean({"undone": undone}))

    async def next_batch(request: Request) -> Response:
        body = await _json_body(request, ("strategy", "batch_size"))
        strategy_name = _text(body, "strategy", default=trainer.strategy, max_length=100)
        if strategy_name not in _strategies():
            raise _BadRequest(
                f"Unknown strategy {strategy_name[:40]!r}; valid: {sorted(_strategies())}."
            )
        size = _whole(body, "batch_size", low=1, high=MAX_BATCH, default=trainer.batch_size)
        started = trainer.start(strategy=strategy_name, batch_size=size)
        return JSONResponse({"started": started})

    async def export(request: Request) -> Response:
        body = await _json_body(request, ("overwrite",))
        overwrite = body.get("overwrite", False)
        if not isinstance(overwrite, bool):
            raise _BadRequest("'overwrite' must be true or false.")
        paths = session.export_paths(overwrite=overwrite)
        if session.trained_model() is None:
            paths.pop("model")
        written = session.export(**{f"path_{kind}": path for kind, path in paths.items()})
        return JSONResponse({"written": [str(p) for p in written.values()]})

    async def handle_bad(request: Request, exc: _BadRequest) -> Response:
        return _error(str(exc), exc.status)

    async def handle_input(request: Request, exc: InputError) -> Response:
        return _error(str(exc), 404 if isinstance(exc, UnknownCellError) else 422)

    middleware = [Middleware(_SameOrigin, hosts=allowed, need_origin=not token)]
    if token:
        middleware.append(Middleware(_TokenCheck, token=token))
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/static/{name}", static),
            Route("/api/state", state),
            Route("/api/embedding", embedding),
            Route("/api/cells/{cell:path}", evidence),
            Route("/api/answer", answer, methods=["POST"]),
            Route("/api/undo", undo, methods=["POST"]),
            Route("/api/next", next_batch, methods=["POST"]),
            Route("/api/export", export, methods=["POST"]),
        ],
        middleware=middleware,
        exception_handlers={_BadRequest: handle_bad, InputError: handle_input},
    )
    app.state.trainer = trainer
    if not trainer.pending():
        trainer.start()
    if len(session.cells):  # the first evidence computes every gene's statistics: do it now
        warm = threading.Thread(target=session.cell_evidence, args=(session.cells[0],))
        warm.daemon = True
        warm.start()
    return app


def _strategies() -> set[str]:
    from ..strategies import STRATEGIES

    return set(STRATEGIES)
