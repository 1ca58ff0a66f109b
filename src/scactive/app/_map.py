"""The map the page draws: every cell's position and codes in a few bytes each."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: The first bytes of a map payload (``GET /api/map``), naming its layout.
MAP_MAGIC = b"SCM1"
#: The confidence byte of a cell without a prediction (others: ``round(254 * confidence)``).
NO_CONFIDENCE = 255


def map_payload(
    xy: np.ndarray,
    label: Sequence[str | None],
    predicted: Sequence[str | None] | None = None,
    confidence: Sequence[float] | None = None,
    *,
    vocabulary: Sequence[str] = (),
    round_: int = 0,
    answered: Sequence[tuple[str, int]] = (),
) -> bytes:
    """Every cell's position and codes in a few bytes each: the map the page draws.

    Layout (little-endian): ``MAP_MAGIC``; the header's length (uint32); the header, UTF-8
    JSON (``n``, ``round``, ``categories``, ``code_bytes``, ``no_confidence``, ``answered``:
    names and positions of the answered cells); zeros up to a multiple of 4 bytes; then ``x``
    and ``y`` (float32, ``n`` each), the ``label`` and ``predicted`` codes (unsigned,
    ``code_bytes`` each: 0 for none, ``k`` for ``categories[k - 1]``) and the confidence
    (uint8: ``round(254 * confidence)``, ``NO_CONFIDENCE`` for none). No per-cell names:
    10**6 cells take 11 MB instead of ~60 MB of JSON.

    ``label``, ``predicted`` (None: untrained) and ``confidence`` have one entry per row of
    ``xy``; missing values are None or NaN. Categories list ``vocabulary`` first, then any
    other value in the order met.
    """
    xy = np.asarray(xy, dtype=np.float32)
    n = len(xy)
    categories = list(dict.fromkeys(vocabulary))
    where = {c: k for k, c in enumerate(categories)}

    def codes(values) -> np.ndarray:
        if values is None:
            return np.zeros(n, dtype=np.int64)
        found, uniques = pd.factorize(np.asarray(values, dtype=object))
        lookup = np.zeros(len(uniques) + 1, dtype=np.int64)
        for j, value in enumerate(uniques):
            if value not in where:
                where[value] = len(categories)
                categories.append(value)
            lookup[j + 1] = where[value] + 1
        return lookup[found + 1]  # -1 (missing) -> 0

    label_codes, predicted_codes = codes(label), codes(predicted)
    code_type = next(t for t in ("<u1", "<u2", "<u4") if len(categories) < 256 ** int(t[-1]))
    scores = np.full(n, np.nan) if confidence is None else np.asarray(confidence, dtype=float)
    byte = np.rint(np.clip(np.nan_to_num(scores, nan=0.0), 0, 1) * 254).astype("<u1")
    byte[~np.isfinite(scores)] = NO_CONFIDENCE
    header = json.dumps(
        {
            "n": n,
            "round": int(round_),
            "categories": [str(c) for c in categories],
            "code_bytes": int(code_type[-1]),
            "no_confidence": NO_CONFIDENCE,
            "answered": {
                "cells": [str(c) for c, _ in answered],
                "positions": [int(p) for _, p in answered],
            },
        },
        ensure_ascii=False,
    ).encode("utf-8")
    start = len(MAP_MAGIC) + 4 + len(header)
    return b"".join(
        [
            MAP_MAGIC,
            np.uint32(len(header)).astype("<u4").tobytes(),
            header,
            bytes(-start % 4),
            np.ascontiguousarray(xy[:, 0], dtype="<f4").tobytes(),
            np.ascontiguousarray(xy[:, 1], dtype="<f4").tobytes(),
            label_codes.astype(code_type).tobytes(),
            predicted_codes.astype(code_type).tobytes(),
            byte.tobytes(),
        ]
    )


def session_map(session) -> bytes:
    """:func:`map_payload` of a session: its UMAP, current labels and the model's calls."""
    table = session.embedding()
    answers = session.labels()
    positions = session.cells.get_indexer(answers["cell"])
    label = np.full(len(table), None, dtype=object)
    has_label = answers["label"].notna().to_numpy()
    label[positions[has_label]] = answers["label"].to_numpy(object)[has_label]
    predictions = session.predictions()
    trained = len(predictions) > 0
    status = session.status()
    return map_payload(
        table[["umap1", "umap2"]].to_numpy(),
        label,
        predictions["predicted"].to_numpy(object) if trained else None,
        predictions["confidence"].to_numpy(float) if trained else None,
        vocabulary=[v["label"] for v in status["vocabulary"]],
        round_=status["round"],
        answered=list(zip(answers["cell"], positions.tolist(), strict=True)),
    )
