"""The annotation web service: a JSON API over a :class:`~scactive.app.Session` and one page.

Every answer goes straight to the session's store (committed before the reply), so stopping
the server at any moment loses nothing. Retraining runs in a background thread; the page polls
``/api/state`` and shows the next batch when it is ready.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .._checks import check_batch_size
from .._errors import DiskFull, InputError
from .._threads import get_threads, set_threads
from ._dotplot_routes import dotplot_routes
from ._guard import (
    LOOPBACK_NAMES,
    MAX_BATCH,
    BadRequest,
    SameOrigin,
    TokenCheck,
    error_reply,
    host_name,
)
from ._labels import check_annotator
from ._map_routes import map_routes
from ._record import remember_settings
from ._session_routes import session_routes, strategy_names
from ._store import UnknownCellError

logger = logging.getLogger("scactive")

_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "workbench.js": "text/javascript; charset=utf-8",
    "dotplot.js": "text/javascript; charset=utf-8",
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

    def after_answers(self) -> None:
        """Retrain and pick the next batch once the batch has no cell left to answer."""
        if not self.pending() and not self.running:
            self.start()

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
                if isinstance(err, DiskFull):
                    raise
                logger.info("not retrained: %s", err)
            batch = self.session.next_batch(self.batch_size, strategy=self.strategy)
            with self.lock:
                self.batch = list(batch)
        except Exception as err:  # noqa: BLE001 - reported to the page, the server goes on
            mine = isinstance(err, InputError)  # a message of scactive's speaks for itself
            if mine:
                logger.warning("retraining failed: %s", err)
            else:
                logger.exception("retraining failed")
            with self.lock:
                self.error = str(err) if mine else f"{type(err).__name__}: {err}"
        finally:
            with self.lock:
                self.running = False
                self.seconds = time.monotonic() - self.started


def create_app(
    session,
    *,
    token: str | None = None,
    batch_size: int = 20,
    strategy: str = "entropy",
    hosts: Iterable[str] | None = None,
    annotator: str | None = None,
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
    annotator
        The name recorded with each answer whose request names no ``annotator`` (None: no
        one named); ``/api/state`` reports it as ``annotator``.

    Security model: without a token the server trusts only its own loopback origin (Host a
    loopback name, state-changing requests same-origin JSON); with one, every request must
    carry the token. See :class:`SameOrigin`.
    """
    check_batch_size(batch_size, most=MAX_BATCH)
    if strategy not in strategy_names():
        raise InputError(f"Unknown strategy {strategy!r}; valid: {sorted(strategy_names())}.")
    annotator = check_annotator(annotator)
    if hosts is None:
        hosts = None if token else LOOPBACK_NAMES
    allowed = None if hosts is None else frozenset(host_name(h) for h in hosts)
    # One thread unless the caller chose: the small network trains faster so on 2 cores than
    # with two threads competing with the server's own (1.4 s against 2.0 s per batch at
    # 30,000 cells).
    if get_threads() is None:
        set_threads(1)
    trainer = _Trainer(session, batch_size=batch_size, strategy=strategy)
    remember_settings(session.path, strategy=strategy, batch_size=batch_size)  # for exports

    async def index(request: Request) -> Response:
        page = files("scactive.app").joinpath("static", "index.html").read_text("utf-8")
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return error_reply(f"no such file: {name[:80]!r}", 404)
        body = files("scactive.app").joinpath("static", name).read_text("utf-8")
        return Response(body, media_type=_STATIC[name])

    middleware = [Middleware(SameOrigin, hosts=allowed, need_origin=not token)]
    if token:
        middleware.append(Middleware(TokenCheck, token=token))
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/static/{name}", static),
            *session_routes(session, trainer, annotator=annotator),
            *map_routes(session, after_answers=trainer.after_answers, annotator=annotator),
            *dotplot_routes(session, trainer_state=trainer.state, pending=trainer.pending),
        ],
        middleware=middleware,
        exception_handlers={BadRequest: _handle_bad, InputError: _handle_input},
    )
    app.state.trainer = trainer
    if not trainer.pending():
        trainer.start()
    if len(session.cells):  # the first evidence computes every gene's statistics: do it now
        _in_background(session.cell_evidence, session.cells[0])
        # the map's clusters: computed once into the session file, read back when reopened
        _in_background(session.map.clusters)
    return app


async def _handle_bad(request: Request, exc: BadRequest) -> Response:
    return error_reply(str(exc), exc.status)


async def _handle_input(request: Request, exc: InputError) -> Response:
    if isinstance(exc, DiskFull):  # 507 Insufficient Storage: space, not the request
        return error_reply(str(exc), 507)
    return error_reply(str(exc), 404 if isinstance(exc, UnknownCellError) else 422)


def _in_background(work, *args) -> None:
    """Run ``work(*args)`` in a daemon thread, ahead of the first request that needs it; a
    session closed meanwhile (or refusing) leaves a line in the log, not a traceback."""

    def run() -> None:
        try:
            work(*args)
        except InputError as err:
            logger.info("not prepared ahead: %s", err)

    threading.Thread(target=run, daemon=True).start()
