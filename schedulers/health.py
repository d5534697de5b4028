"""A liveness endpoint for the batch binders (firmament, trade), which serve no HTTP.

``GET /healthz`` answers 200 while the scheduling loop has started a round within
``max_age_s`` seconds, 503 after: a loop stuck in a solve or a hung API call gets its
container restarted, while rounds that fail (API server away) still count as alive,
since a restart would not bring the API server back. Served by the standard
library's threaded HTTP server on a daemon thread: nothing to install, nothing to stop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Heartbeat", "serve_health"]


class Heartbeat:
    """The time of the last loop round (monotonic clock), set by the loop."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.last = clock()

    def beat(self) -> None:
        self.last = self._clock()

    def age(self) -> float:
        return self._clock() - self.last


def serve_health(heartbeat: Heartbeat, port: int, *, host: str = "0.0.0.0",
                 max_age_s: float = 120.0) -> ThreadingHTTPServer:
    """Serve /healthz on ``host:port`` from a daemon thread; returns the server
    (``server_address`` holds the port when ``port`` is 0)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/healthz", "/livez"):
                self.send_error(404)
                return
            age = heartbeat.age()
            ok = age <= max_age_s
            body = (f"{'ok' if ok else 'stuck'}: last round started {age:.1f} s ago "
                    f"(limit {max_age_s:g} s)\n").encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # a probe every few seconds would flood the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
    return server
