"""The annotation web service: a JSON API over a :class:`~scactive.app.Session` and one page.

Every answer goes straight to the session's store (committed before the reply), so stopping
the server at any moment loses nothing. Retraining runs in a background thread; the page polls
``/api/state`` and shows the next batch when it is ready.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from importlib.resources import files
from typing import Any

import numpy as np
import torch
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .._errors import InputError
from ._store import UnknownCellError

logger = logging.getLogger("scactive")

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
    return JSONResponse({"error": message}, status_code=status)


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


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as err:
        raise _BadRequest(f"the body is not valid JSON ({err})") from err
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    return body


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
    """
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
        body = await _json_body(request)
        cell, kind = body.get("cell"), body.get("kind", "label")
        if not isinstance(cell, str) or not isinstance(kind, str):
            raise _BadRequest("'cell' and 'kind' must be text")
        label = body.get("label") if kind == "label" else None
        answer_id = session.answer(cell, label, kind=kind)  # validates cell, kind and label
        if not trainer.pending() and not trainer.running:
            trainer.start()
        return JSONResponse({"id": answer_id, "pending": trainer.pending()})

    async def undo(request: Request) -> Response:
        # with an id, this tab's own answer: several tabs on one session undo their own
        answer_id = (await _json_body(request)).get("id")
        if answer_id is not None and (not isinstance(answer_id, int) or answer_id < 1):
            raise _BadRequest("'id' must be the whole number /api/answer returned")
        undone = session.undo(answer_id)
        return JSONResponse(_clean({"undone": undone}))

    async def next_batch(request: Request) -> Response:
        body = await _json_body(request)
        strategy_name = body.get("strategy", trainer.strategy)
        if strategy_name not in _strategies():
            raise _BadRequest(
                f"unknown strategy {str(strategy_name)[:40]!r}; valid: {sorted(_strategies())}"
            )
        size = body.get("batch_size", trainer.batch_size)
        if not isinstance(size, int) or not 1 <= size <= 500:
            raise _BadRequest("batch_size must be a whole number from 1 to 500")
        started = trainer.start(strategy=strategy_name, batch_size=size)
        return JSONResponse({"started": started})

    async def export(request: Request) -> Response:
        stem = session.path.with_suffix("")
        written = session.export(
            path_h5ad=f"{stem}.h5ad",
            path_csv=f"{stem}.csv",
            path_model=f"{stem}.model.joblib" if session.trained_model() is not None else None,
        )
        return JSONResponse({"written": [str(p) for p in written.values()]})

    async def handle_bad(request: Request, exc: _BadRequest) -> Response:
        return _error(str(exc), exc.status)

    async def handle_input(request: Request, exc: InputError) -> Response:
        return _error(str(exc), 404 if isinstance(exc, UnknownCellError) else 422)

    middleware = [Middleware(_TokenCheck, token=token)] if token else []
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
