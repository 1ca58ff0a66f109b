"""The simulation grid: models x strategies x batch sizes x seeds, each cell independent."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from .._checks import check_batch_size
from .._errors import InputError, unknown_name
from .._hierarchy import Hierarchy
from .._random import name_seed
from ..loop import SimulatedOracle, active_learning
from ..metrics import evaluate
from ..models import get_preset, learner_input, make_learner
from ..strategies import DEFAULT_STRATEGIES, get_strategy, strategy_names, strategy_tags
from ..strategies._registry import canonical_name
from ._data import SeedData, first_two
from ._options import DataOptions


@dataclass(frozen=True)
class GridOptions:
    """The experiment grid and how each run proceeds (the defaults are the paper's grid, with
    BALD and the strategies for tiny budgets beside its five strategies)."""

    models: tuple[str, ...] = ("mlp2",)
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    batch_sizes: tuple[int, ...] = (9, 27, 81)
    seeds: int = 3
    n_rounds: int = 10
    stop_fraction: float | None = None
    epochs: int | None = None
    retrain: str = "scratch"
    use_pca: bool = True
    ceiling: bool = True
    #: A cell-type hierarchy over the labels, as sorted ``(type, parent)`` pairs (``""``: a
    #: top-level type; a :class:`~scactive._hierarchy.Hierarchy` given is turned into them):
    #: each round then records macro-F1 per level.
    hierarchy: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.hierarchy, Hierarchy):
            object.__setattr__(self, "hierarchy", tuple(sorted(self.hierarchy.to_dict().items())))
        for model in self.models:
            get_preset(model)  # an unknown name lists the valid ones
        strategies = strategy_names()
        # an alias ("uncertainty", the paper's name) runs and is reported as its strategy
        named = tuple(dict.fromkeys(canonical_name(s) for s in self.strategies))
        object.__setattr__(self, "strategies", named)
        for strategy in self.strategies:
            if strategy not in strategies:
                raise unknown_name("strategy", strategy, strategies, plural="strategies")
        for name, values in (
            ("models", self.models),
            ("strategies", self.strategies),
            ("batch_sizes", self.batch_sizes),
        ):
            if not values:
                raise InputError(f"{name} is empty; give at least one.")
        for b in self.batch_sizes:
            check_batch_size(b, name="batch size (--batch-sizes)")
        if self.seeds < 1 or self.n_rounds < 0:
            raise InputError(
                f"seeds={self.seeds}, rounds={self.n_rounds}: need seeds >= 1 and rounds >= 0."
            )
        if self.stop_fraction is not None and not 0 < self.stop_fraction <= 1:
            raise InputError(f"stop_fraction={self.stop_fraction}; expected a fraction in (0, 1].")
        if self.retrain not in {"scratch", "continue"}:
            raise InputError(f"retrain={self.retrain!r}; expected 'scratch' or 'continue'.")
        if self.epochs is not None and self.epochs < 1:
            raise InputError(f"epochs={self.epochs}; expected a whole number >= 1.")

    @cached_property
    def tree(self) -> Hierarchy | None:
        """The :class:`~scactive._hierarchy.Hierarchy` of :attr:`hierarchy`, if any."""
        return None if self.hierarchy is None else Hierarchy.from_pairs(self.hierarchy)


@dataclass(frozen=True, order=True)
class GridCell:
    """One independent run: its result depends on nothing but these four values."""

    model: str
    strategy: str
    batch_size: int
    seed: int

    @property
    def key(self) -> str:
        return f"{self.model}__{self.strategy}__b{self.batch_size}__s{self.seed}"


@dataclass
class Grid:
    """The grid cells to run, in a fixed order, and why the combinations left out cannot run."""

    cells: list[GridCell] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def build_grid(options: GridOptions) -> Grid:
    """The grid cells in a fixed order, leaving out combinations that cannot run."""
    grid = Grid()
    for model in options.models:
        for strategy in options.strategies:
            if strategy_tags(strategy).needs_mc_draws and not get_preset(model).stochastic:
                grid.skipped.append(
                    f"{model} x {strategy}: needs MC dropout, which {model} has not"
                )
                continue
            for batch_size in options.batch_sizes:
                for seed in range(options.seeds):
                    grid.cells.append(GridCell(model, strategy, int(batch_size), seed))
    return grid


def _overrides(model: str, options: GridOptions) -> dict:
    takes_epochs = get_preset(model).takes_epochs
    return {"epochs": options.epochs} if options.epochs and takes_epochs else {}


def _learner_factory(model: str, seed_data: SeedData, options: GridOptions, cell_rng):
    overrides = _overrides(model, options)

    def new_learner(round_: int):
        # Round 0 is seeded by model and seed only, so every strategy starts from one model.
        rng = np.random.default_rng(name_seed(seed_data.seed, model)) if round_ == 0 else cell_rng
        return make_learner(
            model, seed_data.features, rng=rng, given=learner_input(model), **overrides
        )

    return new_learner


def run_cell(
    cell: GridCell, seed_data: SeedData, options: GridOptions, *, on_round=None, on_fit=None
):
    """Run one grid cell; returns its results and picks as tables (``on_round``, ``on_fit``:
    see :func:`~scactive.loop.active_learning`)."""
    rng = np.random.default_rng(name_seed(cell.seed, cell.model, cell.strategy, cell.batch_size))
    strategy = get_strategy(cell.strategy, **_strategy_params(cell.strategy, options))
    reads = learner_input(cell.model)
    result = active_learning(
        seed_data.pool_matrix(reads),
        SimulatedOracle(seed_data.y_pool),
        X_val=seed_data.val_matrix(reads),
        y_val=seed_data.y_val,
        new_learner=_learner_factory(cell.model, seed_data, options, rng),
        strategy=strategy,
        strategy_name=cell.strategy,
        batch_size=cell.batch_size,
        initial=seed_data.initial,
        rng=rng,
        n_rounds=options.n_rounds,
        stop_fraction=options.stop_fraction,
        embedding=seed_data.embedding,
        classes=seed_data.prepared.classes,
        retrain=options.retrain,
        on_round=on_round,
        on_fit=on_fit,
        hierarchy=options.tree,
    )
    meta = {
        "model": cell.model,
        "strategy": cell.strategy,
        "batch_size": cell.batch_size,
        "seed": cell.seed,
    }
    results = pd.DataFrame([{**meta, **r} for r in result.rounds])
    picks = pd.DataFrame(result.picks, columns=["round", "position", "label"])
    names = seed_data.prepared.adata.obs_names[seed_data.pool]
    positions = picks.pop("position").to_numpy(dtype=np.int64)
    picks.insert(1, "cell", np.asarray(names)[positions])
    picks["pc1"], picks["pc2"] = first_two(seed_data.embedding[positions]).T
    picks = (
        pd.concat([pd.DataFrame([meta] * len(picks)), picks], axis=1)
        if len(picks)
        else pd.DataFrame(columns=[*meta, "round", "cell", "label", "pc1", "pc2"])
    )
    return results, picks


def _strategy_params(name: str, options: GridOptions) -> dict:
    return {"use_pca": options.use_pca} if strategy_tags(name).uses_embedding else {}


def run_ceiling(model: str, seed_data: SeedData, options: GridOptions) -> pd.DataFrame:
    """The model trained on the whole pool: the ceiling every strategy is measured against."""
    import time

    overrides = _overrides(model, options)
    reads = learner_input(model)
    learner = make_learner(
        model,
        seed_data.features,
        rng=np.random.default_rng(name_seed(seed_data.seed, model, "ceiling")),
        given=reads,
        **overrides,
    )
    start = time.perf_counter()
    learner.fit(seed_data.pool_matrix(reads), seed_data.y_pool)
    seconds = time.perf_counter() - start
    metrics = evaluate(
        seed_data.y_val,
        learner.predict_proba(seed_data.val_matrix(reads)),
        learner.classes_,
        all_classes=seed_data.prepared.classes,
        hierarchy=options.tree,
    )
    n_pool = len(seed_data.pool)
    return pd.DataFrame(
        [
            {
                "model": model,
                "strategy": "ceiling",
                "batch_size": pd.NA,
                "seed": seed_data.seed,
                "round": 0,
                "n_labeled": n_pool,
                "frac_labeled": 1.0,
                "n_types_found": len(np.unique(seed_data.y_pool)),
                **metrics,
                # trained on every label: nothing to estimate, no rounds to compare
                "estimated_f1": np.nan,
                "agreement": np.nan,
                "stop": False,
                "train_seconds": seconds,
                "query_seconds": 0.0,
                "pool_exhausted": False,
            }
        ]
    )


def config_dict(data: DataOptions, grid: GridOptions) -> dict:
    """Every parameter as plain JSON values (the hierarchy as ``{type: parent}``, and only
    when given: the config of a run without one is what it was before hierarchies)."""
    data_values = asdict(data)
    del data_values["check_min_genes"]  # refuses or not: a run's results do not depend on it
    grid_values = asdict(grid)
    hierarchy = grid_values.pop("hierarchy")
    if hierarchy is not None:
        grid_values["hierarchy"] = dict(hierarchy)
    return {
        **data_values,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in grid_values.items()},
    }
