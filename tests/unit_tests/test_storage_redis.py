"""RedisStore against a real redis-server started by these tests.

The server is a subprocess on a free 127.0.0.1 port (and a Unix socket in a
temp folder), with persistence off, shared by the session and stopped at the
end. Unit tests run with ``--disable-socket --allow-unix-socket``; this module
re-allows TCP to 127.0.0.1 only, with pytest-socket's ``allow_hosts`` marker
(which restricts ``connect``; ``enable_socket`` would open everything). The
tests need ``redis-server`` (CI installs it) and fail without it.
"""

from __future__ import annotations

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
import redis

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.events import encode_event
from langchain_tokencal.storage import RedisStore, Store, StoreError, open_store
from tests.unit_tests.test_storage import (
    CANARY_EVENTS,
    SharedStoreContract,
    check_writers,
    ev,
    run_writers,
    start_writer,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

REDIS_SERVER = shutil.which("redis-server")

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


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

    def dump(self) -> bytes:
        """Every key on the server and every value it holds, as bytes."""
        held: list[bytes] = []
        with closing(self.client()) as client:
            for key in client.scan_iter(count=1000):
                held.append(key)
                kind = client.type(key)
                if kind == b"stream":
                    held += [
                        v for _, f in client.xrange(key) for kv in f.items() for v in kv
                    ]
                elif kind == b"list":
                    held += client.lrange(key, 0, -1)
                elif kind == b"set":
                    held += client.smembers(key)
                elif kind == b"hash":
                    held += [x for kv in client.hgetall(key).items() for x in kv]
                else:
                    held.append(client.dump(key) or b"")
        return b"\n".join(held)


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
    assert REDIS_SERVER is not None, (
        "redis-server is not installed (apt-get install redis-server); "
        "the Redis tests need a real server"
    )
    folder = tmp_path_factory.mktemp("redis")
    for _ in range(3):  # another program may take the port between probe and bind
        server = start_server(folder)
        if server is not None:
            break
    else:
        pytest.fail("redis-server did not start")
    yield RedisServer(server.port, folder / "redis.sock")
    server.stop()


class TestRedisStore(SharedStoreContract):
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

    @pytest.fixture
    def dump(self, redis_server: RedisServer) -> Callable[[Store], bytes]:
        """Every key and value on the server."""
        return lambda store: redis_server.dump()

    @pytest.fixture
    def corrupt(self, redis_server: RedisServer) -> Callable[[Store], None]:
        """Stream entries that hold no event line, added with a plain client."""

        def add(store: Store) -> None:
            assert isinstance(store, RedisStore)
            with closing(redis_server.client()) as client:
                client.xadd(f"{store.prefix}events", {"e": "not json"})
                client.xadd(f"{store.prefix}events", {"other": "field"})

        return add

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

    def test_holds_only_events_and_usage(self, redis_server: RedisServer) -> None:
        """The keys are the documented layout; the stream holds the event lines."""
        prefix = f"layout-{uuid.uuid4().hex}:"
        with closing(RedisStore(redis_server.url(prefix))) as store:
            store.append(CANARY_EVENTS)
            store.add_usage("gpt-4o", [120, 30, 150, 0, 0, 0, 0, 0])
        with closing(redis_server.client()) as client:
            ours = {k.decode() for k in client.scan_iter(match=f"{prefix}*")}
            lines = [
                f
                for _, fields in client.xrange(f"{prefix}events")
                for f in fields.values()
            ]
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
        assert lines == [encode_event(e).encode() for e in CANARY_EVENTS]

    def test_password_is_redacted(self) -> None:
        """The error of a server that is not there never shows the password."""
        url = f"redis://user:hunter2@127.0.0.1:{free_port()}/0?password=hunter3"
        with pytest.raises(StoreError) as info:
            RedisStore(url)
        assert "hunter" not in str(info.value)
        assert "user:***@" in str(info.value)

    def test_url_is_redacted(self, redis_server: RedisServer) -> None:
        """The url attribute of an open store hides the password and keeps the rest."""
        url = redis_server.url("redacted:") + "&password="
        with closing(RedisStore(url)) as store:
            assert store.url == redis_server.url("redacted:") + "&password=***"

    def test_cursor_after_the_last_sequence_number(
        self, redis_server: RedisServer
    ) -> None:
        """A cursor at a millisecond's last sequence number reads from the next one."""
        last = f"5-{2**64 - 1}"
        with closing(RedisStore(redis_server.url())) as store:
            assert isinstance(store, RedisStore)
            with closing(redis_server.client()) as client:
                for entry_id in ("5-0", last, "6-0"):
                    line = encode_event(ev(int(entry_id[0])))
                    client.xadd(f"{store.prefix}events", {"e": line}, id=entry_id)
            assert store.read(after="5-0")[0] == [ev(5), ev(6)]
            assert store.read(after=last) == ([ev(6)], "6-0")

    @pytest.mark.parametrize("bad", ["5", "a-1", "5-1-2", "-1-0"])
    def test_bad_cursors(self, store: Store, bad: str) -> None:
        """Anything but <ms>-<seq> is not a cursor of a Redis store."""
        with pytest.raises(StoreError, match="not a cursor"):
            store.read(after=bad)

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
