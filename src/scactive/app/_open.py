"""Opening an annotation session: the data prepared, the store created or checked, the UMAP."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import anndata as ad

from .._errors import InputError, unknown_name
from .._hierarchy import Hierarchy, as_hierarchy
from ..io import select_matrix
from ..models import DEFAULT_MODEL, PRESETS, shared_input
from ._contents import check_contents, check_seed
from ._labels import check_label, check_markers, seed_labels
from ._levels import check_hierarchy, store_hierarchy
from ._prepare import (
    check_same_data,
    compute_umap,
    dataset_checksum,
    input_umap,
    prepare_cells,
    source_meta,
)
from ._record import recorded_hierarchy, recorded_markers, recorded_vocabulary
from ._session import CV_MODEL, Session
from ._sqlite import SCHEMA_VERSION, forget_new
from ._store import SessionError, SessionStore

logger = logging.getLogger("scactive")


def open_session(
    adata: ad.AnnData,
    path: str | Path,
    *,
    label_key: str | None = None,
    markers: Mapping[str, Iterable[str]] | None = None,
    model: str | None = None,
    seed: int | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    cv_model: str | None = CV_MODEL,
    source: str | Path | None = None,
    read_options: Mapping[str, object] | None = None,
    use_input_umap: bool = True,
    hierarchy: Hierarchy | str | Path | Mapping | None = None,
) -> Session:
    """Open the annotation session stored at ``path`` on ``adata``, creating it if new.

    Parameters
    ----------
    adata
        Every cell to annotate (counts or log-normalised values; no cell is dropped). Not
        changed; :meth:`Session.export` writes a copy with the answers.
    path
        The session file (SQLite). A file made for other data is refused.
    label_key
        New sessions only: an ``obs`` column whose non-missing labels become the first
        answers (round 0, source ``seed``).
    markers
        Cell type -> marker genes: the types join the vocabulary, the genes are shown by
        :meth:`Session.cell_evidence`, and the cold start asks first about the cells scoring
        highest for each type's markers (:class:`scactive.strategies.MarkerColdStart`; without
        markers: the most typical cell of each cluster). Genes not in the data are named in a
        warning.
    model
        The learner preset (``scactive.models.PRESETS``); default: the session's, else mlp2.
    seed
        New sessions: seeds the PCA, UMAP, cold start and learners (default 0). A session
        keeps the seed it was created with.
    layer, use_raw
        Read this layer or ``.raw`` instead of ``X`` (the checksum covers the matrix read).
    cv_model
        The learner of the cross-validated accuracy estimate; None: the session's model.
    use_input_umap
        New sessions: show the UMAP the input carries in ``obsm['X_umap']`` (when it has one
        row per cell), instead of computing one from the PCA; the slowest step of opening a
        large session. The UMAP is kept in the session file either way.
    hierarchy
        Cell-type levels (``T cell > CD4 T``): a :class:`~scactive._hierarchy.Hierarchy`,
        the path of a JSON/YAML tree or a ``type,parent`` table, or a tree ``{type:
        {subtype: {...}}}``. Its types join the vocabulary; the session file keeps it and
        later ones add to it (a type given another parent is refused). A new session over an
        scactive export takes the hierarchy its ``uns['scactive']`` holds too. Predictions
        and exports then carry one call per level.
    source, read_options
        Where ``adata`` was read from (a path or a bundled name) and how (e.g.
        ``{"transpose": True}``): recorded in the session, so the command line can reopen it
        without the data path, and protected from being overwritten by an export. A moved
        file is recorded anew (the checksum still has to match).
    """
    for name, value in (("model", model), ("cv_model", cv_model)):
        if value is not None and value not in PRESETS:
            raise unknown_name(name, value, PRESETS)
    markers = check_markers(markers)
    hierarchy = None if hierarchy is None else check_hierarchy(as_hierarchy(hierarchy))
    carried, carried_vocabulary, carried_markers = _carried(adata)
    data = select_matrix(adata, layer=layer, use_raw=use_raw)
    checksum = dataset_checksum(data)
    seeds = seed_labels(adata, label_key) if label_key is not None else []
    created = not os.path.lexists(Path(path).expanduser())  # a new session file is made
    store = SessionStore(path)
    try:
        meta = store.meta()
        if "dataset_checksum" in meta:
            _check_existing(store, meta, checksum, data, label_key)
        seed = _session_seed(meta, seed)
        new = "dataset_checksum" not in meta  # a new session takes on what an export carries
        if new:
            hierarchy, markers = _take_on(carried, carried_markers, hierarchy, markers)
        model = model or meta.get("model") or DEFAULT_MODEL
        prepared = prepare_cells(data, seed, shared_input(model, cv_model or model))
        umap = store.embedding("umap")
        if umap is None:
            umap = _first_umap(adata, prepared, seed, use_input=use_input_umap)
            created = store.initialize(
                _new_meta(checksum, data.n_obs, label_key, layer, use_raw, model=model, seed=seed),
                embeddings={"umap": umap},
                seeds=seeds,
                vocabulary=[
                    *(carried_vocabulary if new else []),
                    *((label, "seed") for label in dict.fromkeys(s[1] for s in seeds)),
                ],
            )
            if not created:  # another process created it meanwhile
                check_same_data(store.meta(), checksum, data.n_obs, store.path)
                umap = store.embedding("umap")
        if umap is None or umap.shape[0] != data.n_obs:
            raise InputError(f"The UMAP cached in '{store.path}' does not fit the data.")
        if model != store.meta().get("model"):
            store.set_meta(model=model)
        if markers:
            store.add_markers(markers)
        if hierarchy is not None:
            store_hierarchy(store, hierarchy)
        if source is not None:
            _record_source(
                store, source_meta(source, read_options or {}, layer=layer, use_raw=use_raw)
            )
        session = Session(store, adata, prepared, umap, model=model, seed=seed, cv_model=cv_model)
        session._evidence.resolve_markers(markers, warn=True)  # name given genes not in the data
        return session
    except BaseException as err:
        store.close()
        if created:  # a new session file holding no session yet is removed
            forget_new(store.path, err)
        raise


def _carried(adata: ad.AnnData):
    """What the session an export came from had: its tree, its vocabulary (each label
    checked) and its markers."""
    hierarchy, vocabulary = recorded_hierarchy(adata), recorded_vocabulary(adata)
    markers = recorded_markers(adata)
    for label, _ in vocabulary:
        try:
            check_label(label)
        except SessionError as err:
            raise InputError(f"uns['scactive']['vocabulary'] of the data: {err}") from err
    return hierarchy, vocabulary, markers


def _session_seed(meta: Mapping[str, str], seed: int | None) -> int:
    """The seed of a session: the one it was created with (another one given is warned
    about), else ``seed``, else 0."""
    seed = None if seed is None else check_seed(seed)
    if "seed" not in meta:
        return 0 if seed is None else int(seed)
    if seed is not None and seed != int(meta["seed"]):
        warnings.warn(
            f"seed={seed} is ignored: the session keeps the seed it was created with "
            f"({meta['seed']}), which its PCA, UMAP and rounds depend on.",
            UserWarning,
            stacklevel=3,  # the caller of open_session
        )
    return int(meta["seed"])


def _take_on(carried, carried_markers: Mapping, hierarchy, markers: Mapping):
    """A new session's hierarchy and markers: the given ones joined to an export's."""
    if carried is not None:
        hierarchy = check_hierarchy(
            carried
            if hierarchy is None
            else carried.merged(hierarchy, mine="hierarchy the export carries", theirs="one given")
        )
    if carried_markers:
        markers = check_markers(
            {
                t: [*carried_markers.get(t, []), *markers.get(t, [])]
                for t in {**carried_markers, **markers}
            }  # fmt: skip
        )
    return hierarchy, markers


def _record_source(store: SessionStore, recorded: Mapping[str, str]) -> None:
    """Record where the data were read from, when it differs from what the file says."""
    current = store.meta()
    if any(current.get(k) != v for k, v in recorded.items()):
        store.set_meta(**recorded)


def _check_existing(store: SessionStore, meta: Mapping, checksum: str, data, label_key) -> None:
    """Refuse a session file made for other data or holding what the data lack (before
    anything is written into it); warn that ``label_key`` is read only at creation."""
    check_same_data(meta, checksum, data.n_obs, store.path)
    check_contents(store, meta, data.obs_names)
    if label_key is not None and label_key != meta.get("label_key", ""):
        warnings.warn(
            f"label_key={label_key!r} is ignored: seed labels are read only when a "
            f"session is created (this one was created with "
            f"label_key={meta.get('label_key') or None!r}).",
            UserWarning,
            stacklevel=3,  # the caller of open_session
        )


def _first_umap(adata: ad.AnnData, prepared, seed: int, *, use_input: bool):
    """A new session's map: the input's ``obsm['X_umap']`` when asked for and fitting, else
    a UMAP of the cells' PCA."""
    umap = input_umap(adata) if use_input else None
    if umap is None:
        return compute_umap(prepared.pca, seed)
    logger.info("showing the input's obsm['X_umap']")
    return umap


def _new_meta(checksum, n_cells, label_key, layer, use_raw, *, model, seed) -> dict:
    """What a new session file records of its data and settings."""
    return dict(
        schema_version=SCHEMA_VERSION,
        dataset_checksum=checksum,
        n_cells=n_cells,
        label_key=label_key or "",
        matrix=f"layer {layer}" if layer else ("raw" if use_raw else "X"),
        model=model,
        seed=seed,
        strategy_default="entropy",
    )
