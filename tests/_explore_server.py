"""A real explore server (uvicorn in a background thread, a free port) for the explore tests."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import uvicorn

from actlab.explore.server import create_app


class LiveServer:
    def __init__(self, runs: Path, **options: Any) -> None:
        self.app = create_app(runs, **options)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="error", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})
        self.thread.daemon = True

    def __enter__(self) -> LiveServer:
        # as explore.serve does: one intra-op thread (tiny networks; see test_explore_session.py)
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the explore test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        for key in list(self.hub.entries):
            self.hub.close(key)
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
        torch.set_num_threads(self.threads)

    @property
    def hub(self) -> Any:
        return self.app.state.hub


def sse_events(response: Any) -> Iterator[tuple[str, Any]]:
    """(event, data) pairs from a streaming httpx response of server-sent events."""
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
