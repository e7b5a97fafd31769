"""A minimal blocking HTTP/1.1 keep-alive client for latency measurements.

httpx's own per-request cost (~0.3-0.5 ms on these machines) is larger than some of the figures measured, and
varies; this client sends pre-built request bytes on one TCP connection (TCP_NODELAY) and reads the answer by
its Content-Length (or chunked framing), so what is timed is the server's work plus the loopback round trip.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


class RawClient:
    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self._addr = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._path = parts.path or "/"
        self._headers = headers
        self._sock: socket.socket | None = None
        self._buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self._addr)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._buf = sock, b""
        return sock

    def request_bytes(self, body: bytes, extra: dict[str, str] | None = None) -> bytes:
        head = f"POST {self._path} HTTP/1.1\r\nhost: {self._addr[0]}:{self._addr[1]}\r\ncontent-length: {len(body)}\r\n"
        for k, v in {**self._headers, **(extra or {})}.items():
            head += f"{k}: {v}\r\n"
        return (head + "\r\n").encode("latin-1") + body

    def send(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """One exchange: (status, headers with lower-case names, body)."""
        sock = self._sock or self._connect()
        sock.sendall(request)
        while b"\r\n\r\n" not in self._buf:
            self._buf += self._recv(sock)
        head, _, rest = self._buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            body = b""
            while True:
                while b"\r\n" not in rest:
                    rest += self._recv(sock)
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(rest) < size + 2:
                    rest += self._recv(sock)
                body, rest = body + rest[:size], rest[size + 2 :]
                if size == 0:
                    self._buf = rest
                    return status, headers, body
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            rest += self._recv(sock)
        self._buf = rest[length:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, rest[:length]

    def _recv(self, sock: socket.socket) -> bytes:
        data = sock.recv(65536)
        if not data:
            self.close()
            raise ConnectionError("server closed the connection")
        return data

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
