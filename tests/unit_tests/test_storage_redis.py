"""RedisStore against a real redis-server started by these tests.

The server is a subprocess on a free 127.0.0.1 port (and a Unix socket in a
temp folder), with persistence off, shared by the session and stopped at the
end. Unit tests run with ``--disable-socket --allow-unix-socket``; this module
re-allows TCP to 127.0.0.1 only, with pytest-socket's ``allow_hosts`` marker
(which restricts ``connect``; ``enable_socket`` would open everything). If
``redis-server`` is not installed the module is skipped; CI installs it.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import socket
import subprocess
import threading
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.events import LearnEvent, encode_event
from langchain_tokencal.storage import RedisStore, Store, StoreError, open_store
from langchain_tokencal.storage import _redis as _redis_store
from tests.unit_tests.test_storage import (
    StoreContract,
    check_writers,
    ev,
    run_writers,
    start_writer,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

redis = pytest.importorskip("redis")

REDIS_SERVER = shutil.which("redis-server")

pytestmark = [
    pytest.mark.skipif(
        REDIS_SERVER is None,
        reason="redis-server is not installed (apt-get install redis-server); "
        "the Redis tests need a real server",
    ),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]


@dataclass(frozen=True, slots=True)
class RedisServer:
    """Where the test server listens."""

    port: int
    unix_socket: Path

    def url(self, prefix: str | None = None) -> str:
        """A TCP URL, in a fresh key namespace unless ``prefix`` is given."""
        prefix = prefix or f"test-{uuid.uuid4().hex[:12]}:"
        return f"redis://127.0.0.1:{self.port}/0?prefix={prefix}"

    def client(self) -> redis.Redis:
        """A plain client, to look behind the store's back."""
        return redis.Redis(unix_socket_path=str(self.unix_socket))


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """A running redis-server and the thread draining its log."""

    proc: subprocess.Popen[str]
    drain: threading.Thread
    port: int

    def stop(self) -> None:
        """Stop the server and release its pipe."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.drain.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def start_server(folder: Path) -> ServerProcess | None:
    """Start redis-server and wait until it says it is ready (or dies)."""
    port = free_port()
    assert REDIS_SERVER is not None
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--unixsocket", str(folder / "redis.sock"), "--unixsocketperm", "700"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
    proc = subprocess.Popen(  # noqa: S603 - the system's redis-server
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ready = threading.Event()

    def drain() -> None:
        # Reads the log to the end, so the server never blocks on a full pipe.
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Ready to accept connections" in line:
                ready.set()

    server = ServerProcess(proc, threading.Thread(target=drain, daemon=True), port)
    server.drain.start()
    if ready.wait(timeout=15) and proc.poll() is None:
        return server
    server.stop()
    return None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session, stopped at the end."""
    folder = tmp_path_factory.mktemp("redis")
    for _ in range(3):  # another program may take the port between probe and bind
        server = start_server(folder)
        if server is not None:
            break
    else:
        pytest.fail("redis-server did not start")
    yield RedisServer(server.port, folder / "redis.sock")
    server.stop()


class TestRedisStore(StoreContract):
    """A Redis server meets the contract."""

    scheme = "redis://"

    @pytest.fixture
    def target(self, redis_server: RedisServer) -> str:
        """A fresh key prefix on the test server."""
        return redis_server.url()

    @pytest.fixture
    def fresh(self, redis_server: RedisServer) -> Callable[[], Store]:
        """New prefixes on the test server."""
        return lambda: RedisStore(redis_server.url())

    def test_corrupt_entries_are_skipped(
        self, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Undecodable entries are skipped with one warning each."""
        with closing(RedisStore(redis_server.url("corrupt:"))) as store:
            store.append([ev(1)])
            client = redis_server.client()
            client.xadd("corrupt:events", {"e": "not json"})
            client.xadd("corrupt:events", {"other": "field"})
            client.close()
            store.append([ev(2)])
            with caplog.at_level(logging.WARNING, logger="langchain_tokencal.storage"):
                events, _ = store.read()
        assert events == [ev(1), ev(2)]
        assert len(caplog.records) == 2

    def test_prefixes_are_isolated(self, redis_server: RedisServer) -> None:
        """Stores with different prefixes on one server do not see each other."""
        with (
            closing(RedisStore(redis_server.url())) as one,
            closing(RedisStore(redis_server.url())) as two,
        ):
            one.append([ev(1)])
            one.add_usage("m", [1] * 8)
            assert two.read() == ([], "")
            assert two.usage() == {}

    def test_reads_in_pages(self, redis_server: RedisServer) -> None:
        """More events than one XRANGE page are all read, in order."""
        with closing(RedisStore(redis_server.url())) as store:
            events = [ev(i, model=f"m{i % 2}") for i in range(2500)]
            store.append(events)
            assert store.read()[0] == events
            assert store.compact(100) == 2300
            assert store.read()[0] == events[-200:]

    def test_unix_socket(self, redis_server: RedisServer) -> None:
        """unix:// URLs reach the server through its socket file."""
        url = f"unix://{redis_server.unix_socket}?db=0&prefix=unix-{uuid.uuid4().hex}:"
        with closing(open_store(url)) as store:
            assert isinstance(store, RedisStore)
            store.append([ev(1)])
            assert store.read()[0] == [ev(1)]

    def test_holds_only_events_and_usage(
        self, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every key and value written is an event line, model, id or usage sum."""
        canary = "CANARY-5feceb66 the user's secret prompt"
        monkeypatch.setenv("TOKENCAL_CANARY", canary)
        digest = hashlib.sha256(canary.encode()).hexdigest()[:16]
        events = [
            LearnEvent(
                "gpt-4o", "prompt", ("tools-0", digest, digest, 9, 120), "me", 1.0
            ),
            LearnEvent("claude", "message", (digest, 12.0), "me", 1.0),
        ]
        prefix = f"canary-{uuid.uuid4().hex}:"
        with closing(RedisStore(redis_server.url(prefix))) as store:
            store.append(events)
            store.add_usage("gpt-4o", [120, 30, 150, 0, 0, 0, 0, 0])
        client = redis_server.client()
        try:
            dump: list[bytes] = []
            for key in client.scan_iter(count=1000):
                dump.append(key)
                kind = client.type(key)
                if kind == b"stream":
                    dump += [
                        v for _, f in client.xrange(key) for v in (*f, *f.values())
                    ]
                elif kind == b"list":
                    dump += client.lrange(key, 0, -1)
                elif kind == b"set":
                    dump += client.smembers(key)
                elif kind == b"hash":
                    dump += [x for kv in client.hgetall(key).items() for x in kv]
                else:
                    dump.append(client.dump(key) or b"")
            ours = {k.decode() for k in client.scan_iter(match=f"{prefix}*")}
            lines = [
                f
                for _, fields in client.xrange(f"{prefix}events")
                for f in fields.values()
            ]
        finally:
            client.close()
        assert not any(canary.encode() in item for item in dump)
        assert ours == {
            f"{prefix}{name}"
            for name in (
                "events",
                "event-models",
                "ids:gpt-4o",
                "ids:claude",
                "usage:gpt-4o",
                "usage-models",
            )
        }
        assert lines == [encode_event(e).encode() for e in events]

    def test_password_is_redacted(self, redis_server: RedisServer) -> None:
        """The url attribute and errors never show the password."""
        free = free_port()
        url = f"redis://user:hunter2@127.0.0.1:{free}/0?password=hunter3"
        with pytest.raises(StoreError) as info:
            RedisStore(url)
        assert "hunter" not in str(info.value)
        assert "user:***@" in str(info.value)
        assert _redis_store.redact(url) == (
            f"redis://user:***@127.0.0.1:{free}/0?password=%2A%2A%2A"
        )

    def test_empty_prefix_is_rejected(self, redis_server: RedisServer) -> None:
        """An empty prefix= would share keys with anything; it is refused."""
        with pytest.raises(ConfigError, match="prefix"):
            RedisStore(f"redis://127.0.0.1:{redis_server.port}/0?prefix=")


class TestRedisProcesses:
    """Several OS processes share one server."""

    def test_concurrent_writers(self, redis_server: RedisServer) -> None:
        """Four processes appending 500 events each lose and repeat nothing."""
        seen, everything, usage = run_writers(redis_server.url())
        assert seen == everything
        check_writers(everything, usage)

    def test_cursor_across_processes(self, redis_server: RedisServer) -> None:
        """A cursor taken here returns exactly what another process appended later."""
        url = redis_server.url()
        with closing(open_store(url)) as store:
            store.append([ev(1)])
            _, cursor = store.read()
            proc = start_writer(url, "other", 20, 7)
            proc.communicate("go\n")
            assert proc.returncode == 0
            events, _ = store.read(after=cursor)
        assert [(e.origin, e.values[0]) for e in events] == [
            ("other", i) for i in range(20)
        ]


class TestRedisFailures:
    """Unreachable or silent servers fail fast with StoreError."""

    def test_refused(self) -> None:
        """A port nobody listens on fails at once."""
        started = time.monotonic()
        with pytest.raises(StoreError, match="connect"):
            RedisStore(f"redis://127.0.0.1:{free_port()}/0")
        assert time.monotonic() - started < 3

    def test_silent_server_times_out(self) -> None:
        """A server that accepts but never answers fails within the timeout."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)  # the kernel completes connections; nobody replies
            port = listener.getsockname()[1]
            started = time.monotonic()
            with pytest.raises(StoreError, match="connect"):
                RedisStore(f"redis://127.0.0.1:{port}/0")
            assert time.monotonic() - started < 3

    def test_server_gone_after_open(
        self, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """A server that stops after the store opened makes each call raise StoreError."""
        folder = tmp_path_factory.mktemp("redis-gone")
        server = start_server(folder)
        assert server is not None
        store = RedisStore(f"redis://127.0.0.1:{server.port}/0")
        store.append([ev(1)])
        server.stop()
        calls: list[Callable[[], object]] = [
            lambda: store.append([ev(2)]),
            store.read,
            lambda: store.add_usage("m", [0] * 8),
            store.usage,
            lambda: store.compact(0),
        ]
        for call in calls:
            with pytest.raises(StoreError):
                call()
        store.close()

    def test_bad_url(self) -> None:
        """A malformed URL option raises ConfigError."""
        with pytest.raises(ConfigError, match="invalid Redis URL"):
            RedisStore("redis://127.0.0.1:1/0?socket_timeout=soon")


def test_cursor_arithmetic() -> None:
    """The id after a cursor is the next sequence number, or the next millisecond."""
    assert _redis_store._next_id("5-0", "u") == "5-1"
    assert _redis_store._next_id(f"5-{2**64 - 1}", "u") == "6-0"
    for bad in ("5", "a-1", "5-1-2", "-1-0"):
        with pytest.raises(StoreError, match="not a cursor"):
            _redis_store._next_id(bad, "u")
