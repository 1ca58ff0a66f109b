"""The session's routes: its state, the cells and their evidence, answers, batches, export.

Every answer goes to the session's store before the reply; the batch routes start the
trainer's background work (``_Trainer`` of :mod:`._server`).
"""

from __future__ import annotations

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._guard import MAX_BATCH, MAX_ID, BadRequest, json_body, text_field, whole_field
from ._map import session_map
from ._map_routes import json_safe
from ._record import remember_settings


def strategy_names() -> set[str]:
    """The registered strategies' names (read at each request: plugins may add some)."""
    from ..strategies import STRATEGIES

    return set(STRATEGIES)


def session_routes(session, trainer, *, annotator: str | None) -> list[Route]:
    """The routes over ``session`` and its ``trainer``; ``annotator`` names who answers when a
    request names no one."""

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
            "estimated_f1_history": [r["estimated_f1"] for r in status["cv_history"]],
            "batch_answers": {
                cell: row.label if row.kind == "label" else row.kind
                for cell, row in shown.iterrows()
            },
            "strategies": sorted(strategy_names()),
            "annotator": annotator,
            "obs_columns": session.map.obs_columns(),  # categorical columns to colour by
            # where the batch's cells are in the map (GET /api/map), which carries no names
            "positions": dict(
                zip(batch["batch"], session.cells.get_indexer(batch["batch"]).tolist(), strict=True)
            ),
        }
        return JSONResponse(json_safe(out))

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
        return JSONResponse(json_safe(columns))

    async def cell_map(request: Request) -> Response:
        # about 0.2 s at 10**6 cells: in a worker thread, so other requests are answered
        body = await run_in_threadpool(session_map, session)
        return Response(
            body, media_type="application/octet-stream", headers={"Cache-Control": "no-store"}
        )

    async def evidence(request: Request) -> Response:
        return JSONResponse(json_safe(session.cell_evidence(request.path_params["cell"])))

    async def answer(request: Request) -> Response:
        body = await json_body(request, ("cell", "label", "kind", "annotator"))
        cell = text_field(body, "cell")
        if cell is None:
            raise BadRequest("'cell' must be text: the id of the cell answered.")
        kind = text_field(body, "kind", default="label", max_length=40)
        label = text_field(body, "label", max_length=10_000)
        # the page's name field, else the server's --annotator; blank counts as none
        name = text_field(body, "annotator", max_length=10_000)
        name = annotator if name is None or not name.strip() else name
        # validates cell, kind, label and name
        answer_id = session.answer(cell, label, kind=kind, annotator=name)
        trainer.after_answers()
        return JSONResponse({"id": answer_id, "pending": trainer.pending()})

    async def undo(request: Request) -> Response:
        # with an id, this tab's own answer: several tabs on one session undo their own
        body = await json_body(request, ("id",))
        undone = session.undo(whole_field(body, "id", low=1, high=MAX_ID))
        return JSONResponse(json_safe({"undone": undone}))

    async def next_batch(request: Request) -> Response:
        body = await json_body(request, ("strategy", "batch_size"))
        strategy_name = text_field(body, "strategy", default=trainer.strategy, max_length=100)
        if strategy_name not in strategy_names():
            raise BadRequest(
                f"Unknown strategy {strategy_name[:40]!r}; valid: {sorted(strategy_names())}."
            )
        size = whole_field(body, "batch_size", low=1, high=MAX_BATCH, default=trainer.batch_size)
        started = trainer.start(strategy=strategy_name, batch_size=size)
        if started:
            await run_in_threadpool(
                remember_settings, session.path, strategy=strategy_name, batch_size=size
            )
        return JSONResponse({"started": started})

    async def export(request: Request) -> Response:
        body = await json_body(request, ("overwrite",))
        overwrite = body.get("overwrite", False)
        if not isinstance(overwrite, bool):
            raise BadRequest("'overwrite' must be true or false.")
        paths = session.export_paths(overwrite=overwrite)
        if session.trained_model() is None:
            paths.pop("model")
        # seconds of writing for a large dataset: in a worker thread, so the page's other
        # requests are answered meanwhile
        targets = {f"path_{kind}": path for kind, path in paths.items()}
        written = await run_in_threadpool(session.export, **targets)
        return JSONResponse({"written": [str(p) for p in written.values()]})

    return [
        Route("/api/state", state),
        Route("/api/embedding", embedding),
        Route("/api/map", cell_map),
        Route("/api/cells/{cell:path}", evidence),
        Route("/api/answer", answer, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/next", next_batch, methods=["POST"]),
        Route("/api/export", export, methods=["POST"]),
    ]
