"""Training sets for a comparison, read from the output folder of ``scactive simulate``."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import InputError
from ..bench import DataOptions, SeedData

logger = logging.getLogger("scactive")

#: The training set of every cell in the pool.
POOL = "pool"


@dataclass(frozen=True)
class TrainingSet:
    """Cells a method is trained on: the whole pool, or what a strategy had labeled."""

    name: str
    budget: int
    seed: int
    positions: np.ndarray  # into the seed's pool

    @property
    def key(self) -> str:
        return f"{self.name}__b{self.budget}__s{self.seed}"


@dataclass
class SimulationRun:
    """What a comparison needs from a simulation folder."""

    path: Path
    config: dict
    split: pd.DataFrame
    picks: pd.DataFrame

    @classmethod
    def load(cls, path: str | Path) -> SimulationRun:
        path = Path(path)
        needed = [path / name for name in ("config.json", "split.csv", "picks.csv")]
        missing = [p.name for p in needed if not p.is_file()]
        if missing:
            raise InputError(
                f"'{path}' is not a finished `scactive simulate` folder: {', '.join(missing)} "
                "missing. Pass the --out folder of a simulation that ran to the end."
            )
        try:
            config = json.loads(needed[0].read_text())
        except json.JSONDecodeError as err:
            raise InputError(f"'{needed[0]}' is not valid JSON: {err}.") from err
        read = dict(keep_default_na=False, na_values=[""])
        return cls(path, config, pd.read_csv(needed[1], **read), pd.read_csv(needed[2], **read))

    @property
    def data_options(self) -> DataOptions:
        names = {f.name for f in dataclasses.fields(DataOptions)}
        return DataOptions(**{k: v for k, v in self.config.items() if k in names})

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.split["seed"].unique())

    def check_split(self, seed_data: SeedData) -> None:
        """Refuse data whose split differs from the one the simulation recorded."""
        rows = self.split[(self.split["seed"] == seed_data.seed)]
        recorded = np.sort(rows.loc[rows["role"] == "validation", "cell"].astype(str).to_numpy())
        names = seed_data.prepared.adata.obs_names[seed_data.val]
        if not np.array_equal(recorded, np.sort(np.asarray(names, dtype=str))):
            raise InputError(
                f"The validation cells of seed {seed_data.seed} differ from those recorded in "
                f"'{self.path / 'split.csv'}'. Pass the data the simulation was run on."
            )

    def labeled_order(self, seed_data: SeedData, model: str, strategy: str, batch_size: int):
        """Pool positions in the order the run labeled them: the initial cells, then picks."""
        picks = self.picks
        mine = picks[
            (picks["model"] == model)
            & (picks["strategy"] == strategy)
            & (picks["batch_size"] == batch_size)
            & (picks["seed"] == seed_data.seed)
        ].sort_values("round", kind="stable")
        position = pd.Series(
            np.arange(len(seed_data.pool)),
            index=seed_data.prepared.adata.obs_names[seed_data.pool],
        )
        return np.concatenate([seed_data.initial, position[mine["cell"].astype(str)].to_numpy()])

    def training_sets(
        self,
        seed_data: SeedData,
        *,
        strategies: list[str],
        budgets: list[int],
        model: str | None = None,
        batch_size: int | None = None,
    ) -> tuple[list[TrainingSet], list[str]]:
        """The whole pool plus, per strategy and budget, the first ``budget`` labeled cells.

        Returns the sets and notes on the combinations the run cannot give.
        """
        model = model or self.config["models"][0]
        batch_size = batch_size or min(self.config["batch_sizes"])
        for kind, value, valid in (
            ("model", model, self.config["models"]),
            ("batch size", batch_size, self.config["batch_sizes"]),
        ):
            if value not in valid:
                raise InputError(
                    f"The simulation in '{self.path}' has no {kind} {value!r}; it ran {valid}."
                )
        seed = seed_data.seed
        sets = [TrainingSet(POOL, len(seed_data.pool), seed, np.arange(len(seed_data.pool)))]
        notes = []
        for strategy in strategies:
            if strategy not in self.config["strategies"]:
                raise InputError(
                    f"The simulation in '{self.path}' did not run strategy {strategy!r}; it ran "
                    f"{self.config['strategies']}."
                )
            order = self.labeled_order(seed_data, model, strategy, batch_size)
            for budget in budgets:
                if budget < len(seed_data.initial):
                    notes.append(
                        f"{strategy} at {budget} labels: the run started with "
                        f"{len(seed_data.initial)} labeled cells"
                    )
                elif budget > len(order):
                    notes.append(
                        f"{strategy} at {budget} labels: the run labeled {len(order)} cells "
                        f"(seed {seed})"
                    )
                else:
                    sets.append(TrainingSet(strategy, budget, seed, np.sort(order[:budget])))
        return sets, notes
