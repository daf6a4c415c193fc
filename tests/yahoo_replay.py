"""A local stand-in for Yahoo's chart API, replaying the answers in fixtures/yahoo/ (no network).

The answers' bars are rows of the real ^BVSP CSV in the shape of Yahoo's v8 chart API (see
fixtures/yahoo/build_chart_answers.py). ``RedirectingSession`` is a plain ``requests.Session``, a
session type yfinance accepts, that sends every ``https://<host>/<path>`` to
``http://127.0.0.1:<port>/<host>/<path>``: yfinance builds its real requests (cookie, crumb, chart
with period1/period2) and parses the real HTTP answers; only the address changes.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

ANSWERS = Path(__file__).parent / "fixtures" / "yahoo"
NOT_FOUND = {"chart": {"result": None,
                       "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"}}}


def load_answers() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(ANSWERS.glob("chart_*.json"))]


class YahooReplay:
    def __init__(self, answers: list[dict] | None = None, chart_status: int | None = None):
        self.answers = load_answers() if answers is None else answers
        self.chart_status = chart_status  # e.g. 500: every chart request fails with Yahoo's HTML error page
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (host, path, query)
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                host, _, path = parts.path.lstrip("/").partition("/")
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                replay.requests.append((host, "/" + path, query))
                status, content_type, body = replay.answer(host, "/" + path, query)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def answer(self, host: str, path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
        if host == "fc.yahoo.com":
            return 404, "text/html", b"<html><body>Not found</body></html>"  # Yahoo's real answer, no cookie
        if path == "/v1/test/getcrumb":
            return 200, "text/plain", b"replayCrumb"
        if self.chart_status is not None:
            return self.chart_status, "text/html", b"<html><body>Will be right back...</body></html>"
        for answer in self.answers:
            same_path = path in (answer["path"], answer["path"].replace("^", "%5E"))
            if same_path and all(query.get(k) == v for k, v in answer["query"].items()):
                return 200, "application/json;charset=utf-8", json.dumps(answer["body"]).encode()
        return 404, "application/json;charset=utf-8", json.dumps(NOT_FOUND).encode()

    def chart_requests(self) -> list[dict[str, str]]:
        return [q for host, path, q in self.requests if "/v8/finance/chart/" in path]

    def __enter__(self) -> YahooReplay:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def session(self) -> requests.Session:
        return RedirectingSession(f"http://127.0.0.1:{self.port}")


class RedirectingSession(requests.Session):
    """A real requests.Session whose requests for https://<host>/… go to the local replay server."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        local = f"{self.base}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        return super().request(method, local, *args, **kwargs)
