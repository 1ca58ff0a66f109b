"""Writes respect what is at the target: a named pipe or device is written into, never replaced
(or refused), ``-`` is standard output, and a write the system refuses (a name too long,
another file system, /proc, /sys, no permission) is one paragraph, exit 2, nothing left behind.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_counts, without_root_override
from scactive._errors import InputError
from scactive._files import atomic_write, check_out_folder, check_target, written_together
from scactive.cli import app as cli

#: Seconds a reader of a named pipe waits, at most, for the whole content.
DEADLINE = 300


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def refused(result, *words):
    """Exit 2, one message holding ``words`` (its lines joined), no traceback."""
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for word in words:
        assert word in text, text
    return text


def leftovers(folder: Path) -> list[str]:
    """Temporary files of scactive's left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and "tmp" in p.name)


class PipeReader(threading.Thread):
    """Reads a named pipe (or a pipe's read end) to its end in the background."""

    def __init__(self, source: Path | int) -> None:
        super().__init__(daemon=True)
        self.source, self.data = source, b""

    def run(self) -> None:
        with open(self.source, "rb") as fh:
            self.data = fh.read()

    def result(self) -> bytes:
        self.join(DEADLINE)
        assert not self.is_alive(), "the pipe was never closed"
        return self.data


def char_device(tmp_path: Path) -> Path:
    """A character device to write into: /dev/null for a user, who cannot replace it, but a
    null device of its own in ``tmp_path`` for root, which could."""
    if os.geteuid() != 0:
        return Path("/dev/null")
    path = tmp_path / "null"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        with open(path, "wb") as fh:
            fh.write(b"probe")
    except OSError as err:
        pytest.skip(f"no character device can be made in {tmp_path}: {err}")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A data file and a session with two labeled cells of each of three types."""
    folder = tmp_path_factory.mktemp("session")
    adata = make_counts(n_cells=120, n_genes=200, n_types=3)
    data = folder / "cells.h5ad"
    adata.write_h5ad(data)
    truth = adata.obs["cell_type"].astype(str)
    cells = [truth.index[truth == t][i] for t in sorted(set(truth)) for i in range(2)]
    answers = folder / "answers.csv"
    pd.DataFrame({"cell": cells, "label": truth[cells]}).to_csv(answers, index=False)
    session = folder / "cells.scactive"
    result = invoke("teach", data, answers, "--session", session)
    assert result.exit_code == 0, result.output
    return data, session


@pytest.fixture(scope="module")
def model_file(files, tmp_path_factory):
    data, session = files
    folder = tmp_path_factory.mktemp("model")
    model = folder / "model.safetensors"
    result = invoke("export", "--session", session, "--out", folder / "a.h5ad", "--model", model)
    assert result.exit_code == 0, result.output
    return model


def export(files, *args):
    return invoke("export", "--session", files[1], *args)


# -- atomic_write ------------------------------------------------------------------------------
def test_a_named_pipe_is_written_into_in_place_and_stays_a_pipe(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = PipeReader(fifo)
    reader.start()
    atomic_write(fifo, b"a,b\n1,2\n", stream=True)
    assert reader.result() == b"a,b\n1,2\n"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
def test_a_special_file_is_refused_unless_streamed_and_never_replaced(kind, tmp_path):
    import socket

    if kind == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
    elif kind == "device":
        target = char_device(tmp_path)
    else:
        target = tmp_path / "sock"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
    before = stat.S_IFMT(os.stat(target).st_mode)
    with pytest.raises(InputError, match="not a regular file") as caught:
        atomic_write(target, lambda tmp: Path(tmp).write_bytes(b"x"))
    assert "\n" not in str(caught.value)
    if kind == "socket":
        with pytest.raises(InputError, match="cannot be written into"):
            atomic_write(target, b"x", stream=True)
        server.close()
    assert stat.S_IFMT(os.stat(target).st_mode) == before
    assert not leftovers(target.parent)


def test_dash_is_standard_output(capsysbinary):
    atomic_write("-", b"cell,label\nc1,B\n", stream=True)
    atomic_write("-", lambda tmp: Path(tmp).write_bytes(b"c2,T\n"), stream=True)
    assert capsysbinary.readouterr().out == b"cell,label\nc1,B\nc2,T\n"


def test_a_name_too_long_is_refused_before_and_at_the_write(tmp_path):
    long = tmp_path / ("a" * 300 + ".h5ad")
    with pytest.raises(InputError, match="too long"):
        check_target(long, [], option="--out")
    with pytest.raises(InputError, match="too long"):
        atomic_write(long, b"x")
    fits = tmp_path / ("b" * 250 + ".csv")  # its temporary name is shortened to fit
    atomic_write(fits, b"x")
    assert fits.read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == [fits.name]


def test_another_file_system_is_a_message_and_the_old_file_stays(tmp_path, monkeypatch):
    target = tmp_path / "labels.csv"
    target.write_bytes(b"mine")

    def cross_device(src, dst):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), str(dst))

    monkeypatch.setattr(os, "replace", cross_device)
    with pytest.raises(InputError, match="another file system"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv"]


def test_written_together_replaces_nothing_when_one_fails(tmp_path):
    first, second = tmp_path / "a.h5ad", tmp_path / "b.csv"
    first.write_bytes(b"old a")

    def broken(tmp):
        Path(tmp).write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    with pytest.raises(InputError, match="full"):
        with written_together():
            atomic_write(first, b"new a")
            assert first.read_bytes() == b"old a"  # renamed only when the block ends
            atomic_write(second, broken)
    assert first.read_bytes() == b"old a" and not second.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5ad"]
    with written_together():
        atomic_write(first, b"new a")
        atomic_write(second, b"new b")
    assert (first.read_bytes(), second.read_bytes()) == (b"new a", b"new b")


def test_written_together_names_what_was_written_when_a_rename_fails(tmp_path, monkeypatch):
    first, second = tmp_path / "a.h5ad", tmp_path / "b.csv"
    replace = os.replace

    def second_fails(src, dst):
        if Path(dst) == second:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(InputError) as caught:
        with written_together():
            atomic_write(first, b"a")
            atomic_write(second, b"b")
    message = str(caught.value)
    assert f"Written before this failed: {first}; not written: {second}" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5ad"]


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="no /proc here")
@pytest.mark.parametrize("place", ["/proc/scactive-out", "/sys/kernel/scactive-x", "/proc"])
def test_kernel_folders_are_refused(place):
    if not Path(place).parent.exists():
        pytest.skip(f"{Path(place).parent} does not exist here")
    with pytest.raises(InputError, match="kernel's own files"):
        check_out_folder(place)
    with pytest.raises(InputError, match="cannot be written"):
        atomic_write(Path(place) / "x.csv", b"x")


# -- the command line --------------------------------------------------------------------------
def test_export_csv_into_a_named_pipe_streams_the_whole_table(files, tmp_path):
    fifo = tmp_path / "labels"
    os.mkfifo(fifo)
    reader = PipeReader(fifo)
    reader.start()
    result = export(files, "--out", tmp_path / "a.h5ad", "--csv", fifo)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.BytesIO(reader.result()))
    assert len(table) == 120 and table["scactive_label"].notna().sum() == 6
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5ad", "labels"]


def test_export_csv_to_a_shell_pipe_path(files, tmp_path):
    """``--csv >(wc -c)``: the shell passes /dev/fd/N, the write end of a pipe."""
    read_end, write_end = os.pipe()
    reader = PipeReader(read_end)
    reader.start()
    try:
        result = export(files, "--out", tmp_path / "a.h5ad", "--csv", f"/dev/fd/{write_end}")
    finally:
        os.close(write_end)
    assert result.exit_code == 0, result.output
    assert pd.read_csv(io.BytesIO(reader.result())).shape[0] == 120


def test_export_csv_dash_is_the_table_alone_on_stdout(files, tmp_path):
    result = export(files, "--out", tmp_path / "a.h5ad", "--csv", "-")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout))
    assert len(table) == 120 and list(table.columns[:2]) == ["cell", "scactive_label"]
    assert "standard output" in result.stderr
    assert not (Path.cwd() / "-").exists()


def test_predict_csv_dash_and_pipe(files, model_file, tmp_path):
    data, _ = files
    result = invoke("predict", model_file, data, "--out", tmp_path / "p.h5ad", "--csv", "-")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(io.StringIO(result.stdout)).shape[0] == 120
    fifo = tmp_path / "calls"
    os.mkfifo(fifo)
    reader = PipeReader(fifo)
    reader.start()
    result = invoke("predict", model_file, data, "--out", tmp_path / "q.h5ad", "--csv", fifo)
    assert result.exit_code == 0, result.output
    assert pd.read_csv(io.BytesIO(reader.result())).shape[0] == 120
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("command", ["export", "predict"])
def test_an_h5ad_into_a_pipe_or_device_is_refused(kind, command, files, model_file, tmp_path):
    if kind == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
    else:
        target = char_device(tmp_path)
    before = os.stat(target)
    if command == "export":
        result = export(files, "--out", target)
    else:
        result = invoke("predict", model_file, files[0], "--out", target)
    refused(result, "not a regular file", "--out")
    after = os.stat(target)
    assert (stat.S_IFMT(after.st_mode), after.st_rdev) == (
        stat.S_IFMT(before.st_mode),
        before.st_rdev,
    )
    assert not leftovers(target.parent)


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="no /proc here")
@pytest.mark.parametrize(
    "option, target",
    [("--out", "/sys/x.h5ad"), ("--out", "/proc/x.h5ad"), ("--csv", "/proc/x.csv")],
)
def test_export_into_kernel_folders_is_refused(option, target, files, tmp_path):
    args = [option, target] if option == "--out" else ["--out", tmp_path / "a.h5ad", option, target]
    refused(export(files, *args), option, "kernel's own files")
    assert not (tmp_path / "a.h5ad").exists()  # the other file is not written either


def test_simulate_into_proc_is_refused(files, tmp_path):
    if not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    data, _ = files
    result = invoke("simulate", data, "--label-key", "cell_type", "--out", "/proc/scactive-out")
    refused(result, "--out", "kernel's own files")


def test_names_too_long_are_refused(files, tmp_path):
    data, _ = files
    refused(export(files, "--out", tmp_path / ("a" * 300 + ".h5ad")), "too long")
    result = invoke("simulate", data, "--label-key", "cell_type", "--out", tmp_path / ("r" * 300))
    refused(result, "too long")
    assert list(tmp_path.iterdir()) == []


def test_export_across_file_systems_is_a_message(files, tmp_path, monkeypatch):
    out = tmp_path / "a.h5ad"
    out.write_bytes(b"the user's file")

    def cross_device(src, dst):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), str(dst))

    monkeypatch.setattr(os, "replace", cross_device)
    refused(export(files, "--out", out, "--csv", tmp_path / "a.csv"), "another file system")
    assert out.read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5ad"]


def test_export_into_an_unwritable_folder_is_refused(files, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = subprocess.run(
            [*without_root_override(), sys.executable, "-m", "scactive", "export", "--session",
             str(files[1]), "--out", str(locked / "a.h5ad")],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        locked.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "no write permission" in " ".join(result.stderr.split())
    assert list(locked.iterdir()) == []
