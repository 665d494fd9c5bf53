"""A fault-injecting HTTP proxy on 127.0.0.1, in front of SeaweedFS's S3 port.

It forwards requests byte for byte (the Host header stays the proxy's, which is what the client
signed), and on request it answers S3 errors (503 SlowDown) without forwarding, or plays a
server that is gone: it resets every connection, in flight or new, until it is brought back.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HOP_BY_HOP = {"connection", "keep-alive", "expect", "transfer-encoding", "proxy-connection"}


class FaultProxy:
    """``with FaultProxy(upstream_port) as proxy:``; ``proxy.url`` is the endpoint to give clients."""

    def __init__(self, upstream_port: int) -> None:
        """Listen on a free loopback port; nothing is injected until asked."""
        self.upstream_port = upstream_port
        self._lock = threading.Lock()
        self._errors_left = 0
        self._error = (503, "SlowDown")
        self.down = threading.Event()
        self.errors_served = 0
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _reset(self) -> None:
                # SO_LINGER 0: close with RST, as a killed server's kernel does.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True

            def _handle(self) -> None:
                with proxy._lock:
                    proxy.requests += 1
                    inject = proxy._errors_left > 0
                    if inject:
                        proxy._errors_left -= 1
                        proxy.errors_served += 1
                if proxy.down.is_set():
                    self._reset()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if inject:
                    self._send_error(*proxy._error)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        if name.lower() not in _HOP_BY_HOP:
                            upstream.putheader(name, value)
                    upstream.endheaders(body or None)
                    response = upstream.getresponse()
                    self.send_response_only(response.status, response.reason)
                    for name, value in response.getheaders():
                        if name.lower() not in _HOP_BY_HOP:
                            self.send_header(name, value)
                    self.end_headers()
                    while chunk := response.read(256 * 1024):
                        if proxy.down.is_set():
                            self._reset()  # the server died mid-response
                            return
                        self.wfile.write(chunk)
                except OSError:
                    self._reset()
                finally:
                    upstream.close()

            def _send_error(self, status: int, code: str) -> None:
                body = (
                    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>injected by the test proxy</Message></Error>"
                ).encode()
                self.send_response_only(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, count: int, status: int = 503, code: str = "SlowDown") -> None:
        """Answer the next ``count`` requests with this S3 error instead of forwarding them."""
        with self._lock:
            self._errors_left = count
            self._error = (status, code)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
