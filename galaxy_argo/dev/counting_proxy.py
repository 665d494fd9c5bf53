"""A TCP proxy on 127.0.0.1 that counts the bytes through it, each way: what a host moves over S3.

Issue #15 measures the bytes the Galaxy host sends and receives for a job by giving the Galaxy
process (its object store) and the runner (the artifact bucket) an S3 endpoint through this proxy,
while the pods and the engine reach SeaweedFS directly. It forwards bytes unchanged and reads
none of them (the ``Host`` header stays the proxy's, which is what the client signed), so it
counts what crossed the wire: requests, responses, headers and bodies. One thread accepts; each
connection has one thread per direction, and a direction's end is passed on as a half-close, so
keep-alive connections and streamed bodies behave as without it. About 1 GB/s through it on one
core of the development machine.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

from galaxy_argo.core.errors import GalaxyArgoError

__all__ = ["ByteCounts", "CountingProxy", "CountingProxyError"]

#: Every proxy listens on loopback only.
_HOST = "127.0.0.1"
#: Bytes read from one side before they are written to the other.
_CHUNK = 256 * 1024
#: How often the accept loop looks whether it was stopped.
_ACCEPT_POLL = 0.2


class CountingProxyError(GalaxyArgoError):
    """The proxy could not start, or has no upstream to forward to."""


@dataclass(frozen=True)
class ByteCounts:
    """Bytes through the proxy since it started; subtract two snapshots for what happened between."""

    #: Bytes clients sent (requests and uploads), forwarded to the upstream.
    sent: int = 0
    #: Bytes clients received (responses and downloads), forwarded from the upstream.
    received: int = 0
    #: Connections accepted.
    connections: int = 0

    @property
    def total(self) -> int:
        """Bytes both ways."""
        return self.sent + self.received

    def __sub__(self, other: ByteCounts) -> ByteCounts:
        return ByteCounts(
            self.sent - other.sent, self.received - other.received, self.connections - other.connections
        )


class _Connection:
    """One client connection and its upstream; closed when both directions have ended."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self._open_directions = 2
        self._lock = threading.Lock()

    def direction_done(self) -> bool:
        """One direction ended; close both sockets after the second. Whether this was the last."""
        with self._lock:
            self._open_directions -= 1
            last = self._open_directions == 0
        if last:
            self.close()
        return last

    def abort(self) -> None:
        """Wake both directions' threads (blocked in recv) so that they end."""
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.client.close()
        self.upstream.close()


class CountingProxy:
    """``with CountingProxy(("127.0.0.1", port)) as proxy:``; give clients `url`, read `counts`.

    ``upstream`` may be set after the proxy started (before the first client connects), for an
    upstream whose port is known only later; a client that connects while there is none is
    disconnected at once.
    """

    def __init__(self, upstream: tuple[str, int] | None = None) -> None:
        """A proxy to ``upstream`` (host, port); `start` it to listen."""
        self.upstream = upstream
        self._lock = threading.Lock()
        self._sent = 0
        self._received = 0
        self._accepted = 0
        self._connections: set[_Connection] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on.

        Raises:
            CountingProxyError: it was not started.
        """
        if self._listener is None:
            raise CountingProxyError("the counting proxy is not started: start() it first")
        port: int = self._listener.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the endpoint to give clients."""
        return f"http://{_HOST}:{self.port}"

    def counts(self) -> ByteCounts:
        """A snapshot of the counters."""
        with self._lock:
            return ByteCounts(self._sent, self._received, self._accepted)

    def settled(self, quiet: float = 2.0, timeout: float = 120.0) -> ByteCounts:
        """The counters once no byte has crossed for ``quiet`` seconds (a client's last transfer done).

        Raises:
            CountingProxyError: bytes kept crossing for ``timeout`` seconds.
        """
        last = self.counts()
        began = quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet:
            if time.monotonic() - began > timeout:
                raise CountingProxyError(f"bytes kept crossing the proxy for {timeout:g} s without a pause")
            time.sleep(min(0.1, quiet / 4))
            now = self.counts()
            if now != last:
                last, quiet_since = now, time.monotonic()
        return last

    def start(self) -> CountingProxy:
        """Listen on a free loopback port and accept in a thread.

        Raises:
            CountingProxyError: it is started already.
        """
        if self._listener is not None:
            raise CountingProxyError(f"the counting proxy already listens on {self.url}")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((_HOST, 0))
        listener.listen(128)
        listener.settimeout(_ACCEPT_POLL)
        self._listener = listener
        self._stopping.clear()
        self._acceptor = threading.Thread(target=self._accept_loop, name="counting-proxy-accept", daemon=True)
        self._acceptor.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, cut every open connection and wait for the threads; idempotent."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout)
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for connection in connections:
            connection.abort()
        for thread in threads:
            thread.join(timeout)

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        listener = self._listener
        if listener is None:
            return
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            upstream = self._connect_upstream()
            if upstream is None:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(None)  # blocking: a quiet keep-alive connection is not an error
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(client, upstream)
            with self._lock:
                self._accepted += 1
                self._connections.add(connection)
            self._spawn(connection, client, upstream, sent=True)
            self._spawn(connection, upstream, client, sent=False)

    def _connect_upstream(self) -> socket.socket | None:
        if self.upstream is None:
            return None
        try:
            return socket.create_connection(self.upstream, timeout=10)
        except OSError:
            return None  # the client sees a closed connection, as with the server down

    def _spawn(self, connection: _Connection, source: socket.socket, sink: socket.socket, sent: bool) -> None:
        thread = threading.Thread(
            target=self._pump, args=(connection, source, sink, sent), name="counting-proxy-pump", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _pump(self, connection: _Connection, source: socket.socket, sink: socket.socket, sent: bool) -> None:
        """Copy ``source`` to ``sink`` until ``source`` ends, counting; then half-close ``sink``."""
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        try:
            while True:
                size = source.recv_into(buffer)
                if size == 0:
                    break
                sink.sendall(view[:size])
                with self._lock:
                    if sent:
                        self._sent += size
                    else:
                        self._received += size
        except OSError:
            pass  # either side reset or closed: the other side learns it below
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            last = connection.direction_done()
            with self._lock:
                self._threads.discard(threading.current_thread())
                if last:
                    self._connections.discard(connection)
