"""A local stand-in for B3's ``indexProxy/indexCall`` that replays recorded responses.

B3 takes each request as base64 of a JSON payload in the URL path:

    {base}/GetPortfolioDay/<base64 {"language","pageNumber","pageSize","index","segment"}>
    {base}/GetDownloadPortfolioDay/<base64 {"index","language"}>

The server decodes that payload, records it, and answers from a per-test *script*: for each
endpoint a queue of canned answers (status, body, content type, optional delay), consumed one per
call, then a ``then`` answer repeated for every further call. A body may be a function of the
decoded payload, which is how pages are cut out of the real recording (``pages_of``).

Bodies are bytes and are sent as given: nothing here re-encodes them, so a test can send latin-1
bytes labelled UTF-8 exactly as B3 does.

Use it through the fixtures ``b3_replay`` (the server object, for scripting and inspecting what it
received) and ``b3_base_url`` (its base URL, ``http://127.0.0.1:PORT/indexProxy/indexCall``):
import ``b3_replay_fixture`` / ``b3_base_url_fixture`` into the test module (not conftest.py).
Elsewhere, ``with ReplayServer() as server:`` serves the real recording at ``server.base_url``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

import bovespa_assets

BASE_PATH = "/indexProxy/indexCall"
PORTFOLIO_DAY = "GetPortfolioDay"
DOWNLOAD = "GetDownloadPortfolioDay"
JSON_UTF8 = "application/json; charset=utf-8"  # what B3 labels its answers, whatever the bytes are

SAMPLE_ARCHIVE = Path(bovespa_assets.__file__).parent / "sample_archive"
# The real recorded GetPortfolioDay body (IBOV, segment=2, pt-br, session 2022-12-08; 92 rows, one
# page). Its accented letters were already turned into U+FFFD by the recorder (see SOURCES.md).
RECORDING_PATH = SAMPLE_ARCHIVE / "api" / "GetPortfolioDay_IBOV_segment2_pt-br_2022-12-08.json"
# A real, untouched latin-1 CSV download with its title line.
CSV_PATH = SAMPLE_ARCHIVE / "IBOV" / "IBOVDia_02-10-23.csv"

Body = bytes | Callable[[dict[str, Any]], bytes]


def recording_bytes() -> bytes:
    return RECORDING_PATH.read_bytes()


def recording() -> dict[str, Any]:
    """The real recording as a fresh dict (callers may change their copy)."""
    return json.loads(recording_bytes().decode("utf-8"))


def dump(document: dict[str, Any]) -> bytes:
    """JSON bytes as B3 writes them (compact, non-ASCII letters left as they are)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def page_of(document: dict[str, Any], page_number: int, page_size: int) -> dict[str, Any]:
    """Page `page_number` of `document`'s results, with B3's ``page`` block; same header on every page."""
    results = document["results"]
    total_pages = max(1, math.ceil(len(results) / page_size))
    start = (page_number - 1) * page_size
    return {
        "page": {
            "pageNumber": page_number,
            "pageSize": page_size,
            "totalRecords": len(results),
            "totalPages": total_pages,
        },
        "header": document["header"],
        "results": results[start : start + page_size],
    }


def pages_of(
    document: dict[str, Any] | None = None,
    encode: Callable[[dict[str, Any]], bytes] = dump,
    edit: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None,
) -> Callable[[dict[str, Any]], bytes]:
    """A body answering each request with the page it asks for (``pageNumber``/``pageSize``).

    `document` defaults to the real recording; `edit(page_number, page)` may alter a page before
    it is encoded (e.g. change page 2's header date).
    """
    source = document if document is not None else recording()

    def body(payload: dict[str, Any]) -> bytes:
        page = page_of(source, int(payload["pageNumber"]), int(payload["pageSize"]))
        if edit is not None:
            page = edit(int(payload["pageNumber"]), page)
        return encode(page)

    return body


def csv_download_body(csv_bytes: bytes, json_quoted: bool = False) -> bytes:
    """GetDownloadPortfolioDay's body: base64 of the CSV bytes (sometimes as a JSON string)."""
    encoded = base64.b64encode(csv_bytes)
    return b'"' + encoded + b'"' if json_quoted else encoded


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Body = b""
    content_type: str = JSON_UTF8
    delay_s: float = 0.0  # wait this long before answering (longer than the client's timeout = a timeout)
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Received:
    endpoint: str
    payload: dict[str, Any] | None  # the decoded base64 JSON; None if the path did not hold one
    path: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Script:
    queue: deque[Answer] = field(default_factory=deque)
    then: Answer | None = None


class B3Replay:
    """The server; `base_url` is what a B3Client is given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, _Script] = {}
        self._received: list[Received] = []
        self._stopping = threading.Event()
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so retries go over a pooled connection

            def do_GET(self) -> None:
                replay._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a handler still "delaying" must not hold up teardown
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="b3-replay", daemon=True
        )
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}{BASE_PATH}"

    # -- scripting ---------------------------------------------------------------------------------

    def script(self, endpoint: str, *answers: Answer, then: Answer | None = None) -> None:
        """Answer `endpoint`'s calls with `answers` in order, then with `then` for every further call.

        A call with no answer left gets a 404 "no scripted answer" (and is still recorded).
        """
        with self._lock:
            self._scripts[endpoint] = _Script(deque(answers), then)

    def serve_pages(self, document: dict[str, Any] | None = None, **options: Any) -> None:
        """Every GetPortfolioDay call gets the page it asks for (of the real recording by default)."""
        self.script(PORTFOLIO_DAY, then=Answer(body=pages_of(document, **options)))

    def serve_csv(self, csv_bytes: bytes, json_quoted: bool = False) -> None:
        self.script(DOWNLOAD, then=Answer(body=csv_download_body(csv_bytes, json_quoted)))

    # -- inspecting --------------------------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def payloads(self, endpoint: str = PORTFOLIO_DAY) -> list[dict[str, Any] | None]:
        return [r.payload for r in self.received if r.endpoint == endpoint]

    # -- serving -----------------------------------------------------------------------------------

    def _next_answer(self, endpoint: str) -> Answer | None:
        with self._lock:
            script = self._scripts.get(endpoint)
            if script is None:
                return None
            return script.queue.popleft() if script.queue else script.then

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        endpoint, payload = _decode_path(path)
        with self._lock:
            self._received.append(Received(endpoint, payload, path))
        if payload is None:
            answer = Answer(400, b"request path is not /<endpoint>/<base64 of JSON>", "text/plain")
        else:
            answer = self._next_answer(endpoint) or Answer(
                404, f"no scripted answer for {endpoint}".encode(), "text/plain"
            )
        if answer.delay_s and self._stopping.wait(answer.delay_s):
            return  # server shutting down: drop the request
        body = answer.body(payload or {}) if callable(answer.body) else answer.body
        if not isinstance(body, bytes):
            raise TypeError(f"scripted bodies must be bytes, got {type(body).__name__}")
        try:
            handler.send_response(answer.status)
            handler.send_header("Content-Type", answer.content_type)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in answer.headers:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout) before this answer was ready

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> B3Replay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> B3Replay:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ReplayServer(B3Replay):
    """For use outside the fixtures (``with ReplayServer() as server: ... server.base_url``).

    Serves the real recording's pages to every GetPortfolioDay call unless scripted otherwise.
    """

    def __init__(self) -> None:
        super().__init__()
        self.serve_pages()


def _decode_path(path: str) -> tuple[str, dict[str, Any] | None]:
    """('GetPortfolioDay', {...payload...}) from '/indexProxy/indexCall/GetPortfolioDay/<base64>'."""
    path = path.split("?", 1)[0]
    if not path.startswith(BASE_PATH + "/"):
        return path, None
    endpoint, _, encoded = path[len(BASE_PATH) + 1 :].partition("/")
    try:
        payload = json.loads(base64.b64decode(unquote(encoded), validate=True))
    except (binascii.Error, ValueError):
        return endpoint, None
    return endpoint, payload if isinstance(payload, dict) else None


@pytest.fixture(name="b3_replay")
def b3_replay_fixture() -> Iterator[B3Replay]:
    replay = B3Replay().start()
    try:
        yield replay
    finally:
        replay.stop()


@pytest.fixture(name="b3_base_url")
def b3_base_url_fixture(b3_replay: B3Replay) -> str:
    return b3_replay.base_url
