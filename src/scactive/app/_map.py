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
    codes_as = code_type(len(categories))
    scores = np.full(n, np.nan) if confidence is None else np.asarray(confidence, dtype=float)
    byte = np.rint(np.clip(np.nan_to_num(scores, nan=0.0), 0, 1) * 254).astype("<u1")
    byte[~np.isfinite(scores)] = NO_CONFIDENCE
    header = {
        "n": n,
        "round": int(round_),
        "categories": [str(c) for c in categories],
        "code_bytes": int(codes_as[-1]),
        "no_confidence": NO_CONFIDENCE,
        "answered": {
            "cells": [str(c) for c, _ in answered],
            "positions": [int(p) for _, p in answered],
        },
    }
    return framed(
        MAP_MAGIC,
        header,
        [
            np.ascontiguousarray(xy[:, 0], dtype="<f4"),
            np.ascontiguousarray(xy[:, 1], dtype="<f4"),
            label_codes.astype(codes_as),
            predicted_codes.astype(codes_as),
            byte,
        ],
    )


def framed(magic: bytes, header: dict, arrays: Sequence[np.ndarray]) -> bytes:
    """``magic``, the header's length (uint32), the header (UTF-8 JSON), zeros up to a
    multiple of 4 bytes, then the arrays' bytes one after another (little-endian)."""
    text = json.dumps(header, ensure_ascii=False).encode("utf-8")
    start = len(magic) + 4 + len(text)
    return b"".join(
        [magic, np.uint32(len(text)).astype("<u4").tobytes(), text, bytes(-start % 4)]
        + [np.ascontiguousarray(a).tobytes() for a in arrays]
    )


def code_type(n_categories: int) -> str:
    """The narrowest unsigned type holding codes 0 (none) to ``n_categories``."""
    return next(t for t in ("<u1", "<u2", "<u4") if n_categories < 256 ** int(t[-1]))


#: The first bytes of a colouring payload (``GET /api/colour/...``).
COLOUR_MAGIC = b"SCV1"


def values_payload(name: str, values: np.ndarray) -> bytes:
    """One float32 value per cell, for a continuous colouring (a gene's expression).

    Layout as :func:`framed`: ``COLOUR_MAGIC``, a header (``kind`` ``"values"``, ``name``,
    ``n``, ``min``, ``max``), then ``n`` little-endian float32.
    """
    values = np.asarray(values, dtype="<f4")
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 0.0)
    header = {"kind": "values", "name": name, "n": len(values), "min": low, "max": high}
    return framed(COLOUR_MAGIC, header, [values])


def categories_payload(name: str, codes: np.ndarray, categories: Sequence[str]) -> bytes:
    """One category code per cell (0: none, ``k``: ``categories[k - 1]``), for a categorical
    colouring (clusters, an ``obs`` column).

    Layout as :func:`framed`: ``COLOUR_MAGIC``, a header (``kind`` ``"categories"``,
    ``name``, ``n``, ``categories``, ``counts`` (cells per category), ``code_bytes``), then
    the codes (unsigned, ``code_bytes`` each).
    """
    codes = np.asarray(codes, dtype=np.int64)
    kind = code_type(len(categories))
    counts = np.bincount(codes, minlength=len(categories) + 1)[1:]
    header = {
        "kind": "categories",
        "name": name,
        "n": len(codes),
        "categories": [str(c) for c in categories],
        "counts": counts.tolist(),
        "code_bytes": int(kind[-1]),
    }
    return framed(COLOUR_MAGIC, header, [codes.astype(kind)])


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
