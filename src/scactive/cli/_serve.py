"""``scactive annotate``: the annotation web app over a session file."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from typing import Annotated

import typer

from .._errors import InputError
from . import _options as opt
from . import _session_args as sessions
from . import app, console, fail, setup_logging


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command(cls=opt.ListingCommand)
def annotate(
    data: sessions.OptionalData = None,
    *,
    session: sessions.SessionFile,
    label_key: sessions.SeedLabels = None,
    markers: sessions.Markers = None,
    hierarchy: sessions.Levels = None,
    annotator: sessions.Annotator = None,
    unknown_below: sessions.UnknownBelow = None,
    learner: sessions.Learner = None,
    seed: sessions.Seed = None,
    input_umap: sessions.InputUmap = True,
    strategy: Annotated[
        str, typer.Option(help="Strategy of the first batches: {strategies}.")
    ] = "entropy",
    batch_size: Annotated[int, typer.Option(help="Cells per batch.")] = 20,
    host: Annotated[
        str, typer.Option(help="Address to listen on; beyond 127.0.0.1 a token is required.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on (1 to 65535; 0: a free port the system picks).")
    ] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            help="Token every request must carry (?token= in the address). Generated and "
            "printed when another host than 127.0.0.1 is served without one."
        ),
    ] = None,
    layer: opt.Layer = None,
    use_raw: opt.UseRaw = False,
    transpose: opt.Transpose = False,
    plugin: opt.Plugins = None,
    verbose: opt.Verbose = False,
) -> None:
    """Label cells in a local web app; answers are saved in the session file at once."""
    import uvicorn

    from .._checks import check_batch_size
    from ..app._guard import LOOPBACK_NAMES, MAX_BATCH
    from ..app._server import create_app

    setup_logging(verbose)
    try:
        opt.load_plugins(plugin)
        check_batch_size(batch_size, name="--batch-size", most=MAX_BATCH)
        if not 0 <= port <= 65535:
            raise InputError(
                f"--port {port} is out of range: give a port from 1 to 65535, or 0 for a free "
                "port the system picks (the default is 8765; ports below 1024 need "
                "administrator rights)."
            )
        if token is None and not _is_loopback(host):
            token = secrets.token_urlsafe(24)
        # local mode answers to loopback names only; with a token, to any name
        hosts = None if token else LOOPBACK_NAMES | {host}
        listening = _listen(host, port)  # first: a port in use fails before the data is read
        port = listening.getsockname()[1]  # the port the system picked for 0
    except InputError as err:
        fail(err)
    try:
        s = sessions.open_session_over(
            data,
            session,
            label_key=label_key,
            markers=markers,
            learner=learner,
            seed=seed,
            layer=layer,
            use_raw=use_raw,
            transpose=transpose,
            input_umap=input_umap,
            hierarchy=hierarchy,
        )
        try:
            sessions.set_unknown_below(s, unknown_below)
            web = create_app(
                s,
                token=token,
                batch_size=batch_size,
                strategy=strategy,
                hosts=hosts,
                annotator=annotator,
            )
        except BaseException:
            s.close()
            raise
    except InputError as err:
        listening.close()
        fail(err)
    except BaseException:
        listening.close()
        raise
    # printed once the session is open and the socket listens: the server is ready
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
    shown = f"[{shown}]" if ":" in shown else shown
    address = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    console.print(f"Session [bold]{session}[/]: open [bold]{address}[/] (Ctrl+C to stop)")
    server = uvicorn.Server(uvicorn.Config(web, log_level="warning"))
    try:
        server.run(sockets=[listening])
    finally:
        listening.close()
        s.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a clear error when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise InputError(
            f"Cannot listen on {host}:{port} ({err.strerror or err}). Another program (or "
            "another scactive annotate) may use that port: choose another with --port."
        ) from None
    sock.set_inheritable(True)
    return sock
