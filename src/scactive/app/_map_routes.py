"""The map's routes: colourings (genes, clusters, ``obs`` columns), a cell under the pointer,
and labeling a selection in one action.

Colourings are binary replies, like ``GET /api/map`` (:mod:`._map`): one float32 value per
cell for a gene, one category code per cell for clusters and ``obs`` columns. They pass the
same Host, Origin and token checks as every route (:mod:`._guard`), and
``POST /api/label-selection`` those of every request that changes the session.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._guard import MAX_SELECTION_BODY, BadRequest, error_reply, json_body, text_field
from ._map import categories_payload, values_payload

#: A cell's position in the map, as ``GET /api/map/cells/{position}`` takes it.
POSITION = re.compile(r"[0-9]{1,15}")
#: Longest text a gene search or an ``obs`` column name may be.
MAX_NAME = 200


def _binary(body: bytes) -> Response:
    return Response(
        body, media_type="application/octet-stream", headers={"Cache-Control": "no-store"}
    )


def map_routes(session, *, after_answers: Callable[[], None], annotator: str | None) -> list:
    """The routes of the map's colourings and selections for ``session``.

    ``after_answers`` runs after a selection is labeled (the server's rule for retraining);
    ``annotator`` names the answers whose request names no one.
    """
    tools = session.map

    async def genes(request: Request) -> Response:
        text = request.query_params.get("q", "")[:MAX_NAME]
        return JSONResponse({"genes": tools.search_genes(text)})

    async def gene(request: Request) -> Response:
        name = request.path_params["gene"][:MAX_NAME]
        symbol, values = await run_in_threadpool(tools.gene_values, name)
        return _binary(values_payload(symbol, values))

    async def clusters(request: Request) -> Response:
        # seconds the first time on a large session (then read back): in a worker thread
        codes = await run_in_threadpool(tools.clusters)
        n = int(codes.max(initial=-1)) + 1
        return _binary(categories_payload("cluster", codes + 1, [str(k) for k in range(n)]))

    async def obs(request: Request) -> Response:
        codes, categories = tools.obs_codes(request.path_params["column"][:MAX_NAME])
        return _binary(categories_payload(request.path_params["column"], codes, categories))

    async def cell_at(request: Request) -> Response:
        text = request.path_params["position"]
        if not POSITION.fullmatch(text):
            raise BadRequest(f"A map position is a whole number; got {text[:40]!r}.")
        position = int(text)
        if position >= len(session.cells):
            return error_reply(
                f"No cell at position {position}: the map has {len(session.cells)} cells.", 404
            )
        return JSONResponse(json_safe(cell_summary(session, position)))

    async def label_selection(request: Request) -> Response:
        fields = ("label", "annotator", "cluster", "positions", "shape")
        body = await json_body(request, fields, limit=MAX_SELECTION_BODY)
        label = text_field(body, "label", max_length=10_000)
        if label is None:
            raise BadRequest("'label' must be text: the type given to the selected cells.")
        name = text_field(body, "annotator", max_length=10_000)
        name = annotator if name is None or not name.strip() else name
        cluster, positions = body.get("cluster"), body.get("positions")
        if cluster is not None and (type(cluster) is not int or not 0 <= cluster < 2**31):
            raise BadRequest(f"'cluster' must be a cluster number; got {str(cluster)[:40]}.")
        if positions is not None and (
            not isinstance(positions, list)
            or not all(type(p) is int and 0 <= p < 2**53 for p in positions)
        ):
            raise BadRequest("'positions' must be a list of map positions (whole numbers).")
        shape = text_field(body, "shape", max_length=40)
        done = await run_in_threadpool(
            lambda: tools.label_selection(
                label, positions=positions, cluster=cluster, shape=shape, annotator=name
            )
        )
        after_answers()
        return JSONResponse(done)

    return [
        Route("/api/genes", genes),
        Route("/api/colour/gene/{gene:path}", gene),
        Route("/api/colour/clusters", clusters),
        Route("/api/colour/obs/{column:path}", obs),
        Route("/api/map/cells/{position}", cell_at),
        Route("/api/label-selection", label_selection, methods=["POST"]),
    ]


def cell_summary(session, position: int) -> dict[str, Any]:
    """What the map shows of the cell at ``position`` under the pointer: its name, cluster
    (None until the clusters are computed), current answer and the model's call."""
    cell = str(session.cells[position])
    answers = session.labels()
    mine = answers[answers["cell"] == cell]
    predictions = session.predictions()
    out: dict[str, Any] = {
        "cell": cell,
        "position": position,
        "cluster": session.map.known_cluster(position),
        "label": None,
        "kind": None,
        "predicted": None,
        "confidence": None,
    }
    if len(mine):
        out["label"], out["kind"] = mine["label"].iloc[0], mine["kind"].iloc[0]
    if len(predictions):
        out["predicted"] = predictions["predicted"].iloc[position]
        out["confidence"] = float(predictions["confidence"].iloc[position])
    return out


def json_safe(value: Any) -> Any:
    """JSON-safe values: NaN becomes null, numpy scalars become Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
