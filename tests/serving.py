"""Start ``scactive annotate`` in a subprocess and talk to it, waiting on readiness, not time.

The server prints its address only once its socket listens, so a test waits for that line
(with a deadline generous enough for a loaded machine) instead of sleeping.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request

#: Seconds a server may take to start, or a batch to be ready, on a loaded 2-core machine.
DEADLINE = 300.0


class Server:
    """A running ``scactive annotate``; its output is collected in a thread."""

    def __init__(self, data, session, port: int, *args: str) -> None:
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scactive", "annotate", str(data), "--session", str(session),
             "--port", str(port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_ready()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def wait_ready(self) -> None:
        """Block until the server says it listens (its address line), or fail with its log."""
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start: {''.join(self.output)}")
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if found and (self.port == 0 or int(found[1]) == self.port):
                self.port = int(found[1])  # with --port 0, the one the system picked
                self.origin = f"http://127.0.0.1:{self.port}"
                return

    def call(self, path: str, body: dict | None = None) -> dict:
        """GET ``path`` (or POST ``body`` as the page does) and return the JSON reply."""
        request = urllib.request.Request(self.origin + path, headers={"Origin": self.origin})
        if body is not None:
            request.data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=DEADLINE) as reply:
            return json.loads(reply.read())

    def state_with_batch(self) -> dict:
        """The state once a batch is ready (the first one is picked in the background)."""
        deadline = time.monotonic() + DEADLINE
        while True:
            state = self.call("/api/state")
            if state["batch"] or state["error"] or time.monotonic() > deadline:
                assert state["batch"], state
                return state
            time.sleep(0.2)  # polling interval, not a wait for readiness

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(DEADLINE)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
