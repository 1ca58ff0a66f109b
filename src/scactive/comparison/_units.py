"""The units of a comparison: which method trains on which cells and is scored on which.

Within one dataset the units come from a simulation run (:func:`_simulation_units`), across
datasets from a reference and a query (:func:`_cross_units`); :class:`_Scoring` says how their
calls are scored. :func:`scactive.comparison.compare` runs them.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd

from .._errors import InputError
from ..bench import SeedData, prepare
from ..metrics import evaluate_labels
from ..pp import FeatureSpace, gene_symbols
from ._methods import CellSet
from ._sets import POOL, TrainingSet

logger = logging.getLogger("scactive")

#: The training set of the cross-dataset mode: every usable reference cell.
REFERENCE = "reference"


@dataclass
class _Unit:
    """One method trained on one training set and evaluated on one test set."""

    method: str
    training: TrainingSet
    train: CellSet
    test: CellSet

    @property
    def key(self) -> str:
        return f"{self.method}__{self.training.key}"


def _simulation_units(adata, run, chosen, strategies, budgets, model, batch_size, given_key):
    config = run.config
    label_key = config["label_key"]
    if label_key not in adata.obs:
        raise InputError(
            f"The simulation in '{run.path}' used label_key={label_key!r}, which is not an obs "
            f"column of this data; obs columns: {list(adata.obs.columns)}."
        )
    if given_key not in (None, label_key):
        raise InputError(
            f"label_key={given_key!r}, but the simulation in '{run.path}' used "
            f"{label_key!r}; the comparison scores the same labels as the simulation."
        )
    model = model or config["models"][0]
    batch_size = batch_size or min(config["batch_sizes"])
    options = run.data_options
    prepared = prepare(adata, label_key, options)
    if prepared.checksum != config.get("input_sha256"):
        raise InputError(
            f"This data is not the data the simulation in '{run.path}' ran on (their checksums "
            "differ). Pass the same file, or run the comparison without --from-simulation."
        )
    units, notes = [], []
    for seed in run.seeds:
        seed_data = SeedData(prepared, seed, options)
        run.check_split(seed_data)
        pool = CellSet(
            prepared.adata[seed_data.pool], seed_data.features, seed_data.y_pool.astype(str)
        )
        val = CellSet(prepared.adata[seed_data.val], seed_data.features, seed_data.y_val)
        sets, more = run.training_sets(
            seed_data,
            strategies=list(strategies),
            budgets=budgets,
            model=model,
            batch_size=batch_size,
        )
        notes += more
        for training in sets:
            train = pool if training.name == POOL else pool.subset(training.positions)
            units += [_Unit(name, training, train, val) for name in chosen]
    for note in dict.fromkeys(notes):
        logger.warning("no labeled set for %s", note)
    settings = {
        "mode": "simulation",
        "simulation": str(run.path),
        "simulation_fingerprint": config.get("fingerprint"),
        "model": model,
        "batch_size": batch_size,
        "label_key": label_key,
        "input_sha256": prepared.checksum,
    }
    return units, _Scoring(prepared.classes), settings, list(dict.fromkeys(notes))


def _cross_units(adata, query, label_key, query_label_key, label_map, options, chosen):
    reference = _by_symbol(adata)
    query = _by_symbol(query)
    shared = reference.var_names.intersection(query.var_names, sort=False)
    if len(shared) == 0:
        raise InputError(
            "The reference and the query share no gene names; check that both use gene "
            "symbols (or Ensembl IDs with a symbol column in var)."
        )
    warnings.warn(
        f"Cross-dataset comparison on the {len(shared)} genes the two datasets share "
        f"(reference: {reference.n_vars}, query: {query.n_vars}).",
        UserWarning,
        stacklevel=3,
    )
    ref = prepare(reference[:, shared], label_key, options)
    if query_label_key is None:
        query_data = query[:, shared].copy()
        query_data.obs["_unlabeled"] = "query"
        qry = prepare(query_data, "_unlabeled", options, query=True)
        query_labels = None
    else:
        qry = prepare(query[:, shared], query_label_key, options, query=True)
        query_labels = qry.labels
        if not label_map and not np.isin(query_labels, ref.classes).any():
            warnings.warn(
                "No query cell type has the name of a reference type, so every call counts as "
                "wrong. Pass a label map (reference type -> query type) to score the calls.",
                UserWarning,
                stacklevel=3,
            )
    features = FeatureSpace(
        n_top_genes=options.n_top_genes, min_cells=options.min_cells, n_pcs=options.n_pcs
    ).fit(ref.adata)
    train = CellSet(ref.adata, features, ref.labels)
    test = CellSet(qry.adata, features, query_labels)
    training = TrainingSet(REFERENCE, ref.adata.n_obs, 0, np.arange(ref.adata.n_obs))
    units = [_Unit(name, training, train, test) for name in chosen]
    settings = {
        "mode": "cross-dataset",
        "label_key": label_key,
        "query_label_key": query_label_key,
        "shared_genes": len(shared),
        "label_map": label_map or {},
        "input_sha256": ref.checksum,
        "query_sha256": qry.checksum,
    }
    classes = None if query_labels is None else np.unique(query_labels)
    left_out = pd.concat(
        [ref.left_out.assign(dataset="reference"), qry.left_out.assign(dataset="query")],
        ignore_index=True,
    )
    return units, _Scoring(classes, label_map or {}), settings, left_out


def _by_symbol(adata: ad.AnnData) -> ad.AnnData:
    symbols = gene_symbols(adata)
    if symbols is adata.var_names:
        return adata
    renamed = adata.copy()
    renamed.var_names = symbols
    renamed.var_names_make_unique()
    return renamed


@dataclass(frozen=True)
class _Scoring:
    """How calls are scored: against which types, after mapping reference names."""

    classes: np.ndarray | None  # None: the test cells have no labels
    label_map: dict[str, str] = field(default_factory=dict)

    def score(self, true: pd.Series, predicted: pd.Series):
        if self.classes is None:
            return {}, {}
        if self.label_map:
            predicted = predicted.map(lambda p: self.label_map.get(p, p))
        return evaluate_labels(true, predicted, self.classes)
