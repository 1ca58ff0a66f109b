"""An export is one snapshot of its session: with answers arriving while it is written, the
``obs`` labels, the answer log in ``uns`` and the command's summary line all agree."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

import anndata as ad
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_counts
from scactive.app import open_session
from scactive.app._record import recorded_labels
from scactive.app._store import SessionStore
from scactive.cli import app as cli

N_TYPES = 3


@pytest.fixture(scope="module")
def adata() -> ad.AnnData:
    return make_counts(n_cells=90, n_genes=150, n_types=N_TYPES)


class Answering:
    """A thread answering without pause until stopped: each pass over the cells labels them
    all (with a type that changes from pass to pass), the next pass marks them all skipped,
    so both the labels and the number of labeled cells keep changing."""

    def __init__(self, answer: Callable[[str, str | None, str], object], cells) -> None:
        self.answer, self.cells = answer, list(cells)
        self.stop, self.n_answers, self.error = threading.Event(), 0, None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                k = self.n_answers
                cell, lap = self.cells[k % len(self.cells)], k // len(self.cells)
                if lap % 2:
                    self.answer(cell, None, "skip")
                else:
                    self.answer(cell, f"type{lap // 2 % N_TYPES}", "label")
                self.n_answers += 1
        except BaseException as err:  # reported by the test, not lost in the thread
            self.error = err

    def __enter__(self) -> Answering:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(60)
        assert self.error is None, self.error

    def wait_for_more(self, than: int) -> None:
        """Block until the thread has recorded more than ``than`` answers."""
        while self.n_answers <= than:
            assert self.thread.is_alive(), self.error
            self.stop.wait(0.001)


def labels_in(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """An export's labels: from its ``obs`` column, and as its ``uns`` answer log implies."""
    out = ad.read_h5ad(path)
    column = out.obs["scactive_label"]
    in_obs = {cell: str(label) for cell, label in column.items() if pd.notna(label)}
    in_log = {cell: answer["label"] for cell, answer in recorded_labels(out).items()}
    return in_obs, in_log


def test_each_export_holds_one_state_of_its_session(adata, tmp_path):
    with open_session(adata, tmp_path / "s.scactive") as session:
        seen_changes = set()
        with Answering(lambda c, label, kind: session.answer(c, label, kind), adata.obs_names) as w:
            for i in range(24):
                w.wait_for_more(w.n_answers)  # answers keep arriving through every export
                written = session.export(path_h5ad=tmp_path / f"e{i}.h5ad")
                in_obs, in_log = labels_in(written["h5ad"])
                assert in_obs == in_log, f"export {i}: obs and the answer log differ"
                assert written.n_labeled == len(in_obs)
                assert written.labels_per_type == dict(pd.Series(in_obs).value_counts())
                seen_changes.add(len(in_obs))
        assert w.n_answers > 24 and len(seen_changes) > 1  # the exports saw different states


def test_the_export_summary_counts_what_the_file_holds(adata, tmp_path):
    data, session = tmp_path / "cells.h5ad", tmp_path / "cells.scactive"
    adata.write_h5ad(data)
    truth = adata.obs["cell_type"].astype(str)
    answers = tmp_path / "answers.csv"
    first = [truth.index[truth == t][0] for t in sorted(set(truth))]
    pd.DataFrame({"cell": first, "label": truth[first]}).to_csv(answers, index=False)
    assert CliRunner().invoke(cli, ["teach", str(data), str(answers), "--session",
                                    str(session)]).exit_code == 0  # fmt: skip
    store = SessionStore(session)  # another connection, as another program would hold

    def answer(cell: str, label: str | None, kind: str) -> None:
        store.add_answers([(cell, label, kind, "user", None)])

    try:
        with Answering(answer, adata.obs_names) as w:
            for i in range(4):
                w.wait_for_more(w.n_answers)
                out = tmp_path / f"out{i}.h5ad"
                args = ["export", "--session", str(session), "--out", str(out), "--learner",
                        "logreg"]  # fmt: skip
                result = CliRunner().invoke(cli, args)
                assert result.exit_code == 0, result.output
                said = re.search(r"\((\d+) labeled cells of (\d+) types\)", result.output)
                in_obs, in_log = labels_in(out)
                assert in_obs == in_log
                assert int(said[1]) == len(in_obs), result.output
                assert int(said[2]) == len(set(in_obs.values())), result.output
    finally:
        store.close()
