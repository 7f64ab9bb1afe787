"""Files served over HTTP on 127.0.0.1 for the installer's tests: a registry, a feed, an
archive, each GET counted. Shared by test_install.py (the npm registry),
test_install_official.py (Chrome for Testing, Chromium's snapshot bucket and Mozilla's feeds) and
test_bisect.py."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import urllib.parse
from collections.abc import Callable


class Server:
    """Files served over HTTP on 127.0.0.1 (path -> bytes), each GET counted."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        #: answers for paths that are not files: each gets the path, None when it is not its own
        self.routes: list[Callable[[str], bytes | None]] = []
        self.gets: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.gets.append(self.path)
                body = server.files.get(self.path)
                for route in server.routes:
                    body = body if body is not None else route(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def put(self, path: str, body: bytes | str | dict) -> str:
        if isinstance(body, dict):
            body = json.dumps(body)
        self.files[path] = body.encode() if isinstance(body, str) else body
        return self.url + path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released): a host that refuses."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bucket_listing(prefix: str, prefixes: tuple[str, ...] = (), keys: tuple[str, ...] = (), next_marker: str = "") -> str:
    """A page of a Google Cloud Storage bucket's XML listing (``?delimiter=/&prefix=...``), as
    Chromium's snapshot bucket answers: ``CommonPrefixes`` one level down, ``Contents`` at this
    level, and ``NextMarker`` with ``IsTruncated`` when more pages follow."""
    contents = "".join(f"<Contents><Key>{k}</Key><Generation>1700000000000000</Generation><MetaGeneration>1"
                       f"</MetaGeneration><LastModified>2023-04-01T00:00:00.000Z</LastModified><ETag>\"0\"</ETag>"
                       f"<Size>1</Size></Contents>" for k in keys)
    common = "".join(f"<CommonPrefixes><Prefix>{p}</Prefix></CommonPrefixes>" for p in prefixes)
    more = f"<NextMarker>{next_marker}</NextMarker><IsTruncated>true</IsTruncated>" if next_marker else \
        "<IsTruncated>false</IsTruncated>"
    return ("<?xml version='1.0' encoding='UTF-8'?><ListBucketResult xmlns='http://doc.s3.amazonaws.com/2006-03-01'>"
            f"<Name>chromium-browser-snapshots</Name><Prefix>{prefix}</Prefix><Marker></Marker>{more}{contents}"
            f"{common}</ListBucketResult>")


def serve_bucket_listing(server: Server, mount: str, prefix: str, prefixes: list[str], page: int) -> None:
    """``prefix``'s listing at ``mount`` as a bucket answers it for any marker: the prefixes after
    the marker in lexical order, ``page`` at a time, a truncated page naming its last as NextMarker."""
    ordered = sorted(prefixes)

    def route(path: str) -> bytes | None:
        url = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path != f"{mount}/" or query.get("prefix") != prefix or query.get("delimiter") != "/":
            return None
        after = [p for p in ordered if p > query.get("marker", "")]
        return bucket_listing(prefix, tuple(after[:page]), next_marker=after[page - 1] if len(after) > page else "").encode()
    server.routes.append(route)
