"""The routes of the selected cell's dot plot and of why the model's sections are empty.

Both are reads (GET): they pass the Host and token checks of every route (:mod:`._guard`);
any other method is refused like every request that would change the session.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._dotplot import DotPlots, model_needs
from ._guard import BadRequest
from ._map_routes import POSITION, json_safe
from ._store import UnknownCellError


def dotplot_routes(session, *, trainer_state: Callable[[], dict], pending: Callable) -> list:
    """``GET /api/dotplot?cell=<position>`` and ``GET /api/model-needs`` for ``session``;
    ``trainer_state()`` says whether a training runs, ``pending()`` lists the batch's cells
    still unanswered. The rows of the plots are kept while the answers and the model stay
    the same (:class:`~._dotplot.DotPlots`)."""
    plots = DotPlots(session)

    async def dotplot(request: Request) -> Response:
        text = request.query_params.get("cell", "")
        position = int(text) if POSITION.fullmatch(text) else None
        if position is None:
            raise BadRequest(f"'cell' is a map position (a whole number); got {text[:40]!r}.")
        if position >= len(session.cells):  # a 404, as an unknown cell everywhere
            raise UnknownCellError(f"No cell at position {position} of {len(session.cells)}.")
        # the clusters may still be computing, and the columns are read from the matrix
        return JSONResponse(json_safe(await run_in_threadpool(plots.plot, position)))

    async def needs(request: Request) -> Response:
        training = bool(trainer_state()["training"])
        return JSONResponse(model_needs(session, len(pending()), training))

    return [Route("/api/dotplot", dotplot), Route("/api/model-needs", needs)]
