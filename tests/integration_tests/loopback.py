"""A threaded HTTP server on 127.0.0.1 that answers like a provider's API.

An `App` receives each POST as ``(path, body)`` and answers a `Reply`: a JSON
document (sent with ``Content-Length``) or a stream of already framed byte
chunks (Server-Sent Events or NDJSON, sent with chunked transfer encoding,
as the real APIs do over HTTP/1.1), each on its own connection. The server records every request it
served and every usage it billed, so a test can compare what the handler
learned and billed with what the "provider" counted.

The clients under test are the real partner packages; nothing here mocks
them. Only the network peer is fake, and it is bound to the loopback address.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from typing_extensions import Self

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType

__all__ = ["App", "Bill", "LoopbackServer", "Reply", "ndjson", "sse"]


@dataclass(frozen=True)
class Bill:
    """What the server counted for one call.

    In LangChain's convention: input includes cache reads and writes, output
    includes reasoning.
    """

    model: str
    input_tokens: int
    output_tokens: int
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output."""
        return self.input_tokens + self.output_tokens


@dataclass
class Reply:
    """An HTTP answer: a JSON body, or a stream of framed chunks."""

    status: int = 200
    body: Any = None
    chunks: Iterable[bytes] | None = None
    content_type: str = "application/json"


def sse(events: Iterable[tuple[str | None, Any]]) -> Iterator[bytes]:
    """Server-Sent Events: ``event:`` (when named) and ``data:`` lines."""
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {name}\n" if name else ""
        yield f"{head}data: {text}\n\n".encode()


def ndjson(objects: Iterable[Any]) -> Iterator[bytes]:
    """Newline-delimited JSON, one object a line (Ollama's stream)."""
    for obj in objects:
        yield (json.dumps(obj) + "\n").encode()


class App:
    """A provider-shaped API. Subclasses implement `handle`.

    Thread-safe: the server calls `handle` from one thread per connection,
    so shared state (the bills, a prompt cache) is kept under `lock`.
    """

    def __init__(self) -> None:
        """Nothing billed, nothing received yet."""
        self.lock = threading.Lock()
        self.bills: list[Bill] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def handle(self, path: str, body: dict[str, Any]) -> Reply:
        """Answer one POST (the JSON body already parsed)."""
        raise NotImplementedError

    def bill(self, bill: Bill) -> Bill:
        """Record what one call cost."""
        with self.lock:
            self.bills.append(bill)
        return bill

    def totals(self) -> dict[str, int]:
        """The billed sums in the keys `handler.usage` compares against."""
        with self.lock:
            bills = list(self.bills)
        return {
            "input_tokens": sum(b.input_tokens for b in bills),
            "output_tokens": sum(b.output_tokens for b in bills),
            "total_tokens": sum(b.total_tokens for b in bills),
            "cache_read": sum(b.cache_read for b in bills),
            "cache_creation": sum(b.cache_creation for b in bills),
            "reasoning": sum(b.reasoning for b in bills),
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked streams
    server: _Server

    def end_headers(self) -> None:
        # One request per connection: no client keeps an idle pooled socket
        # that outlives its test (or, for async clients, its event loop).
        self.send_header("Connection", "close")
        self.close_connection = True
        super().end_headers()

    def do_POST(self) -> None:
        """Read the JSON body, let the app answer, send JSON or a chunked stream."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        path = self.path.split("?", 1)[0]
        app = self.server.app
        try:
            body = json.loads(raw or b"{}")
            with app.lock:
                app.requests.append((path, body))
            reply = app.handle(path, body)
        except Exception as err:  # noqa: BLE001 - the client sees a 500, the test fails
            self.server.errors.append(f"{path}: {err!r}")
            reply = Reply(500, {"error": {"message": repr(err), "type": "server"}})
        if reply.chunks is None:
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in reply.chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the test output is the report."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: App) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.app = app
        self.errors: list[str] = []


@dataclass
class LoopbackServer:
    """Serve an `App` on 127.0.0.1 (a free port) for the duration of a block."""

    app: App
    _server: _Server | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``."""
        assert self._server is not None, "the server is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def errors(self) -> list[str]:
        """Exceptions the app raised (each answered as a 500)."""
        return self._server.errors if self._server is not None else []

    def __enter__(self) -> Self:
        """Bind a free port on 127.0.0.1 and serve from a daemon thread."""
        self._server = _Server(self.app)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving and close the listening socket."""
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
