"""The counting proxy: bytes each way through it, half-closes passed on, clean start and stop.

Against an echo server on loopback (a thread here), no other process.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from galaxy_argo.dev.counting_proxy import ByteCounts, CountingProxy, CountingProxyError
from galaxy_argo.dev.environment import DevEnvironment
from tests.conftest import wait_until


class EchoServer:
    """Echoes every connection's bytes back; closes its side when the client half-closes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self.listener.getsockname()
        self.threads: list[threading.Thread] = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept() (closing alone does not, on Linux)
        self.listener.close()
        self.accepting.join(5)
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[CountingProxy]:
    with CountingProxy(echo.address) as running:
        yield running


def exchange(port: int, payload: bytes) -> bytes:
    """Send ``payload``, half-close, read the echo to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR)))
        sender.start()  # send and read at once: the echo fills buffers both ways
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        sender.join(10)
    return b"".join(chunks)


def test_bytes_each_way_are_counted(proxy: CountingProxy) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)  # several of the proxy's chunks, and an odd tail
    assert exchange(proxy.port, payload) == payload
    counts = wait_until(lambda: proxy.counts().received == len(payload) and proxy.counts(), what="the echo")
    assert counts == ByteCounts(sent=len(payload), received=len(payload), connections=1)
    assert counts.total == 2 * len(payload)


def test_snapshots_subtract_to_what_happened_between(proxy: CountingProxy) -> None:
    exchange(proxy.port, b"x" * 1000)
    before = wait_until(lambda: proxy.counts().received == 1000 and proxy.counts(), what="the first echo")
    assert exchange(proxy.port, b"y" * 250) == b"y" * 250
    wait_until(lambda: proxy.counts().received == 1250, what="the second echo")
    assert proxy.counts() - before == ByteCounts(sent=250, received=250, connections=1)


def test_concurrent_connections_are_all_counted(proxy: CountingProxy) -> None:
    sizes = [1, 4096, 100_000, 700_001]
    results: dict[int, bytes] = {}

    def run(n: int) -> None:
        results[n] = exchange(proxy.port, b"z" * n)

    threads = [threading.Thread(target=run, args=(n,)) for n in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(results[n] == b"z" * n for n in sizes)
    wait_until(lambda: proxy.counts().received == sum(sizes), what="every echo")
    assert proxy.counts() == ByteCounts(sent=sum(sizes), received=sum(sizes), connections=len(sizes))


def test_a_client_is_disconnected_until_the_upstream_is_known(echo: EchoServer) -> None:
    with CountingProxy() as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            assert sock.recv(10) == b""  # closed at once, nothing forwarded
        assert proxy.counts() == ByteCounts()
        proxy.upstream = echo.address  # known once the server runs, as the stack's S3 port is
        assert exchange(proxy.port, b"now") == b"now"


def test_stop_cuts_open_connections_and_ends_every_thread(echo: EchoServer) -> None:
    proxy = CountingProxy(echo.address).start()
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    sock.sendall(b"open")
    assert sock.recv(10) == b"open"  # a keep-alive connection, left open by its client
    proxy.stop()
    assert sock.recv(10) == b""  # the proxy closed it
    sock.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("counting-proxy")]
    proxy.stop()  # idempotent
    with pytest.raises(CountingProxyError, match="not started"):
        _ = proxy.url


def test_a_proxy_starts_once() -> None:
    with CountingProxy(("127.0.0.1", 9)) as proxy:
        with pytest.raises(CountingProxyError, match="already listens"):
            proxy.start()



def trickle(sock: socket.socket, count: int, every: float = 0.1) -> threading.Thread:
    """A thread sending one byte every ``every`` seconds, ``count`` times."""

    def send() -> None:
        for _ in range(count):
            sock.sendall(b".")
            time.sleep(every)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_settled_waits_for_a_pause_in_traffic(proxy: CountingProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sender = trickle(sock, 5)
        counts = proxy.settled(quiet=0.3)
        sender.join(5)
        assert counts.sent == 5  # not taken before the last byte crossed


def test_settled_gives_up_on_traffic_without_a_pause(proxy: CountingProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sender = trickle(sock, 10, every=0.05)
        with pytest.raises(CountingProxyError, match="kept crossing the proxy for 0.4 s"):
            proxy.settled(quiet=0.2, timeout=0.4)
        sender.join(5)


def test_a_dev_environment_stops_its_proxy(tmp_path: Path) -> None:
    env = DevEnvironment(tmp_path, host_s3_proxy=True)
    proxy = CountingProxy(("127.0.0.1", 9)).start()
    env.host_s3 = proxy  # as start() leaves it, with the stack and Galaxy already stopped
    env.stop()
    assert env.host_s3 is None
    with pytest.raises(CountingProxyError, match="not started"):
        _ = proxy.url
