"""B3Client and PortfolioSource against a local replay of B3's indexProxy (see b3_replay.py).

Every case ends in the right data or in a clear error that names the URL and the reason. Data
comes from real B3 files: the recorded GetPortfolioDay body (IBOV, 2022-12-08, 92 rows) and a real
latin-1 CSV download; only the failure modes are made up here.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from b3_replay import (
    CSV_PATH,
    DOWNLOAD,
    PORTFOLIO_DAY,
    RECORDING_PATH,
    Answer,
    B3Replay,
    b3_base_url_fixture,  # noqa: F401  (fixture "b3_base_url")
    b3_replay_fixture,  # noqa: F401  (fixture "b3_replay")
    dump,
    pages_of,
    recording,
    recording_bytes,
)

from bovespa_assets.b3.client import B3ApiError, B3Client
from bovespa_assets.b3.parse import parse_portfolio_csv, read_portfolio_file
from bovespa_assets.b3.snapshot import B3DataError, PortfolioSnapshot
from bovespa_assets.b3.source import NotYetPublished, PortfolioSource, SessionNotAvailable
from bovespa_assets.lake import RAW_CARTEIRA, Lake, partition_dir
from bovespa_assets.raw_table import snapshot_to_table

SESSION = date(2022, 12, 8)  # the session of the recording
TIMEOUT_S = 0.5
TOO_SLOW_S = 2.0  # a delay well past TIMEOUT_S: the client must time out, not wait
RETRIES = 2
ATTEMPTS = RETRIES + 1

# Modelled on the maintenance page B3's sites serve instead of data (status 200, HTML).
MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html lang=\"pt-br\"><head><meta charset=\"utf-8\"><title>B3 | Manutenção</title>"
    "</head><body><div class=\"container\"><h1>Site em manutenção</h1><p>Estamos realizando uma "
    "manutenção programada. Por favor, tente novamente mais tarde.</p></div></body></html>"
).encode()


def make_client(base_url: str, **options: Any) -> B3Client:
    settings = {"timeout_s": TIMEOUT_S, "retries": RETRIES, "backoff_s": 0.01, "page_size": 50, **options}
    return B3Client(base_url, **settings)


def first_page_url(client: B3Client) -> str:
    return client.portfolio_url("IBOV", 1, 2, "pt-br")


@pytest.fixture(scope="module")
def recorded() -> PortfolioSnapshot:
    """The real recording parsed as an archived file: what every live fetch must reproduce."""
    return read_portfolio_file(str(RECORDING_PATH), recording_bytes())


def assert_same_portfolio(got: PortfolioSnapshot, expected: PortfolioSnapshot) -> None:
    assert got.indice == expected.indice
    assert got.data_pregao == expected.data_pregao
    assert got.rows == expected.rows  # same rows, same order
    assert got.qtd_teorica_total == expected.qtd_teorica_total
    assert got.redutor == expected.redutor
    assert got.published_weight_pct == expected.published_weight_pct


def empty_portfolio() -> bytes:
    document = recording()
    document["page"] = {"pageNumber": 1, "pageSize": 50, "totalRecords": 0, "totalPages": 0}
    document["results"] = []
    return dump(document)


def latin1_dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("latin-1")


def with_date_on_page(page_number: int, new_date: str):
    def edit(number: int, page: dict[str, Any]) -> dict[str, Any]:
        if number == page_number:
            page = {**page, "header": {**page["header"], "date": new_date}}
        return page

    return edit


# --- pagination -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("page_size", "pages"), [(50, 2), (30, 4), (46, 2), (120, 1)])
def test_pages_are_merged_into_the_recorded_portfolio(
    b3_replay: B3Replay, recorded: PortfolioSnapshot, page_size: int, pages: int
):
    b3_replay.serve_pages()
    client = make_client(b3_replay.base_url, page_size=page_size)

    snapshot = client.portfolio_day("IBOV")

    assert_same_portfolio(snapshot, recorded)
    assert len(snapshot.rows) == 92
    assert snapshot.data_pregao == SESSION
    assert snapshot.provenance.source == "b3-api"
    assert snapshot.provenance.location == first_page_url(client)
    payloads = b3_replay.payloads()
    assert [p["pageNumber"] for p in payloads] == list(range(1, pages + 1))
    for payload in payloads:
        assert payload == {
            "language": "pt-br",
            "pageNumber": payload["pageNumber"],
            "pageSize": page_size,
            "index": "IBOV",
            "segment": "2",
        }


def test_index_is_sent_upper_case(b3_replay: B3Replay, recorded: PortfolioSnapshot):
    b3_replay.serve_pages()

    snapshot = make_client(b3_replay.base_url).portfolio_day("ibov")

    assert snapshot.indice == "IBOV"
    assert {p["index"] for p in b3_replay.payloads()} == {"IBOV"}


# --- retries ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        Answer(500, b"Internal Server Error", "text/plain"),
        Answer(503, b"Service Unavailable", "text/plain"),
        Answer(429, b"Too Many Requests", "text/plain"),
        Answer(429, b"Too Many Requests", "text/plain", headers=(("Retry-After", "0"),)),
    ],
    ids=["500", "503", "429", "429-retry-after"],
)
def test_a_transient_error_is_retried(b3_replay: B3Replay, recorded: PortfolioSnapshot, failure: Answer):
    b3_replay.script(PORTFOLIO_DAY, failure, then=Answer(body=pages_of()))

    snapshot = make_client(b3_replay.base_url).portfolio_day("IBOV")

    assert_same_portfolio(snapshot, recorded)
    assert [p["pageNumber"] for p in b3_replay.payloads()] == [1, 1, 2]


def test_500_forever_names_the_url_and_the_status(b3_replay: B3Replay):
    b3_replay.script(PORTFOLIO_DAY, then=Answer(500, b"Internal Server Error", "text/plain"))
    client = make_client(b3_replay.base_url)

    with pytest.raises(B3ApiError) as caught:
        client.portfolio_day("IBOV")

    message = str(caught.value)
    assert first_page_url(client) in message
    assert "HTTP 500" in message
    assert f"after {ATTEMPTS} attempts" in message
    assert len(b3_replay.payloads()) == ATTEMPTS  # the message's attempt count is the real one


def test_a_client_error_is_not_retried_and_says_so(b3_replay: B3Replay):
    b3_replay.script(PORTFOLIO_DAY, then=Answer(404, b"Not Found", "text/plain"))
    client = make_client(b3_replay.base_url)

    with pytest.raises(B3ApiError, match=r"HTTP 404 after 1 attempt$") as caught:
        client.portfolio_day("IBOV")

    assert first_page_url(client) in str(caught.value)
    assert len(b3_replay.payloads()) == 1


def test_a_page_failing_for_good_fails_the_whole_portfolio(b3_replay: B3Replay):
    b3_replay.script(PORTFOLIO_DAY, Answer(body=pages_of()), then=Answer(502, b"Bad Gateway", "text/plain"))
    client = make_client(b3_replay.base_url)

    with pytest.raises(B3ApiError, match="HTTP 502") as caught:
        client.portfolio_day("IBOV")

    assert client.portfolio_url("IBOV", 2, 2, "pt-br") in str(caught.value)
    assert [p["pageNumber"] for p in b3_replay.payloads()] == [1] + [2] * ATTEMPTS


def test_a_timeout_is_retried(b3_replay: B3Replay, recorded: PortfolioSnapshot):
    b3_replay.script(PORTFOLIO_DAY, Answer(body=pages_of(), delay_s=TOO_SLOW_S), then=Answer(body=pages_of()))

    snapshot = make_client(b3_replay.base_url).portfolio_day("IBOV")

    assert_same_portfolio(snapshot, recorded)
    assert [p["pageNumber"] for p in b3_replay.payloads()] == [1, 1, 2]


def test_timeouts_forever_name_the_url_and_the_timeout(b3_replay: B3Replay):
    b3_replay.script(PORTFOLIO_DAY, then=Answer(body=pages_of(), delay_s=TOO_SLOW_S))
    client = make_client(b3_replay.base_url)

    with pytest.raises(B3ApiError) as caught:
        client.portfolio_day("IBOV")

    message = str(caught.value)
    assert first_page_url(client) in message
    assert "timed out" in message.lower()
    assert f"after {ATTEMPTS} attempts" in message
    assert len(b3_replay.payloads()) == ATTEMPTS


# --- bad bodies -------------------------------------------------------------------------------------


def test_an_html_page_is_a_data_error(b3_replay: B3Replay):
    b3_replay.script(PORTFOLIO_DAY, then=Answer(200, MAINTENANCE_PAGE, "text/html; charset=utf-8"))
    client = make_client(b3_replay.base_url)

    with pytest.raises(B3DataError, match="HTML") as caught:
        client.portfolio_day("IBOV")

    assert caught.value.source == first_page_url(client)
    assert "manutenção" in caught.value.reason
    assert len(b3_replay.payloads()) == 1  # a 200 is an answer, not something to retry


def test_malformed_json_is_a_data_error(b3_replay: B3Replay):
    truncated = recording_bytes()[:4000]  # the real body cut short, as a dropped connection leaves it
    b3_replay.script(PORTFOLIO_DAY, then=Answer(body=truncated))
    client = make_client(b3_replay.base_url)

    with pytest.raises(B3DataError, match="malformed JSON") as caught:
        client.portfolio_day("IBOV")

    assert caught.value.source == first_page_url(client)


def test_empty_results_are_a_data_error(b3_replay: B3Replay):
    b3_replay.script(PORTFOLIO_DAY, then=Answer(body=empty_portfolio()))
    client = make_client(b3_replay.base_url)

    with pytest.raises(B3DataError, match="no portfolio rows") as caught:
        client.portfolio_day("IBOV")

    assert caught.value.source == first_page_url(client)


def test_latin1_bytes_labelled_utf8_are_decoded(b3_replay: B3Replay, recorded: PortfolioSnapshot):
    # DERIVED from the real recording: there B3's latin-1 accented bytes were already replaced by
    # U+FFFD by the recorder. Put back the latin-1 byte B3 sent for 'á' in one sector ('Máqs') and
    # send the whole body as latin-1 bytes under B3's "application/json; charset=utf-8" label.
    # U+FFFD has no latin-1 byte, so the other replaced letters become '?' (ASCII, same bytes in
    # latin-1 and UTF-8); the test only relies on the one restored letter.
    text = recording_bytes().decode("utf-8")
    garbled = "Bens Indls / M\ufffdqs e Equips"
    assert garbled in text
    restored = text.replace(garbled, "Bens Indls / Máqs e Equips").replace("\ufffd", "?")
    body = restored.encode("latin-1")
    assert b"M\xe1qs" in body
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")  # really not UTF-8, whatever the label says
    b3_replay.serve_pages(json.loads(restored), encode=latin1_dump)

    snapshot = make_client(b3_replay.base_url).portfolio_day("IBOV")

    weg = next(row for row in snapshot.rows if row.codigo == "WEGE3")
    assert weg.setor == "Bens Indls / Máqs e Equips"
    assert [(r.codigo, r.qtd_teorica, r.participacao_pct) for r in snapshot.rows] == [
        (r.codigo, r.qtd_teorica, r.participacao_pct) for r in recorded.rows
    ]
    assert snapshot.data_pregao == SESSION


def test_the_portfolio_changing_between_pages_is_a_data_error(b3_replay: B3Replay):
    b3_replay.serve_pages(edit=with_date_on_page(2, "09/12/22"))
    client = make_client(b3_replay.base_url)

    with pytest.raises(B3DataError, match="changed the portfolio") as caught:
        client.portfolio_day("IBOV")

    assert caught.value.source == client.portfolio_url("IBOV", 2, 2, "pt-br")


# --- CSV download -----------------------------------------------------------------------------------


@pytest.mark.parametrize("json_quoted", [False, True], ids=["bare", "json-string"])
def test_csv_download_is_the_parsed_latin1_file(b3_replay: B3Replay, json_quoted: bool):
    csv_bytes = CSV_PATH.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        csv_bytes.decode("utf-8")  # the real file is latin-1
    b3_replay.serve_csv(csv_bytes, json_quoted=json_quoted)
    expected = parse_portfolio_csv(csv_bytes, str(CSV_PATH))

    snapshot = make_client(b3_replay.base_url).download_portfolio_csv("ibov")

    assert_same_portfolio(snapshot, expected)
    assert snapshot.data_pregao == date(2023, 10, 2)
    assert snapshot.provenance.source == "b3-api"
    assert b3_replay.payloads(DOWNLOAD) == [{"index": "IBOV", "language": "pt-br"}]


def test_csv_download_not_base64_is_a_data_error(b3_replay: B3Replay):
    b3_replay.script(DOWNLOAD, then=Answer(body=CSV_PATH.read_bytes(), content_type="text/csv"))

    with pytest.raises(B3DataError, match="not base64") as caught:
        make_client(b3_replay.base_url).download_portfolio_csv("IBOV")

    assert "/GetDownloadPortfolioDay/" in caught.value.source
    assert caught.value.source.startswith(b3_replay.base_url)


def test_csv_download_html_page_is_a_data_error(b3_replay: B3Replay):
    b3_replay.script(DOWNLOAD, then=Answer(body=MAINTENANCE_PAGE, content_type="text/html"))

    with pytest.raises(B3DataError, match="HTML") as caught:
        make_client(b3_replay.base_url).download_portfolio_csv("IBOV")

    assert caught.value.source.startswith(b3_replay.base_url + "/GetDownloadPortfolioDay/")


# --- which session the live API may serve ------------------------------------------------------------


def live_source(base_url: str, today: date) -> PortfolioSource:
    return PortfolioSource(archive=None, client=make_client(base_url), today=lambda: today)


def test_the_asked_session_is_served(b3_replay: B3Replay, recorded: PortfolioSnapshot):
    b3_replay.serve_pages()

    snapshot = live_source(b3_replay.base_url, SESSION).fetch("IBOV", SESSION)

    assert_same_portfolio(snapshot, recorded)


@pytest.mark.parametrize("today", [date(2022, 12, 8), date(2022, 12, 9)], ids=["asked-ahead", "asked-today"])
def test_an_earlier_session_served_is_not_yet_published(b3_replay: B3Replay, today: date):
    b3_replay.serve_pages()

    with pytest.raises(NotYetPublished, match="2022-12-08") as caught:
        live_source(b3_replay.base_url, today).fetch("IBOV", date(2022, 12, 9))

    assert "2022-12-09" in str(caught.value)
    assert "not published yet" in str(caught.value)


def test_a_later_session_served_is_not_stored_as_the_asked_one(b3_replay: B3Replay):
    b3_replay.serve_pages()
    asked = date(2022, 12, 7)

    with pytest.raises(SessionNotAvailable, match="already serves the portfolio of 2022-12-08") as caught:
        live_source(b3_replay.base_url, asked).fetch("IBOV", asked)

    assert "2022-12-07 must come from an archive" in str(caught.value)


def test_a_past_session_without_archive_never_calls_b3(b3_replay: B3Replay, b3_base_url: str):
    b3_replay.serve_pages()

    with pytest.raises(SessionNotAvailable, match="past sessions come from an archive") as caught:
        live_source(b3_base_url, date(2022, 12, 9)).fetch("IBOV", SESSION)

    assert "no archive configured" in str(caught.value)
    assert b3_replay.received == []


# --- nothing partial reaches the lake ----------------------------------------------------------------


def load_session(lake: Lake, source: PortfolioSource, index: str, session: date) -> str:
    """The raw asset's path for one session: fetch, then one atomic write of the whole partition."""
    snapshot = source.fetch(index, session)
    return lake.write_table(
        partition_dir(RAW_CARTEIRA, snapshot.indice, snapshot.data_pregao), snapshot_to_table(snapshot)
    )


def all_files(root: Path) -> list[str]:
    """Every file under root, hidden ones included (list_files leaves those out)."""
    return sorted(
        os.path.relpath(os.path.join(folder, name), root) for folder, _, names in os.walk(root) for name in names
    )


def _fail_for_good(replay: B3Replay) -> None:
    replay.script(PORTFOLIO_DAY, then=Answer(500, b"Internal Server Error", "text/plain"))


def _page_2_fails(replay: B3Replay) -> None:
    replay.script(PORTFOLIO_DAY, Answer(body=pages_of()), then=Answer(503, b"Service Unavailable", "text/plain"))


def _time_out_for_good(replay: B3Replay) -> None:
    replay.script(PORTFOLIO_DAY, then=Answer(body=pages_of(), delay_s=TOO_SLOW_S))


def _html(replay: B3Replay) -> None:
    replay.script(PORTFOLIO_DAY, then=Answer(body=MAINTENANCE_PAGE, content_type="text/html"))


def _malformed(replay: B3Replay) -> None:
    replay.script(PORTFOLIO_DAY, then=Answer(body=recording_bytes()[:4000]))


def _empty(replay: B3Replay) -> None:
    replay.script(PORTFOLIO_DAY, then=Answer(body=empty_portfolio()))


def _date_changes(replay: B3Replay) -> None:
    replay.serve_pages(edit=with_date_on_page(2, "09/12/22"))


def _page_2_empty(replay: B3Replay) -> None:
    # B3 shrank its pages mid-read: page 2 comes back empty, so the merged rows miss the footer total
    replay.serve_pages(edit=lambda number, page: {**page, "results": []} if number == 2 else page)


FAILURES = {
    "http-500-forever": (_fail_for_good, SESSION, B3ApiError, "HTTP 500"),
    "page-2-fails": (_page_2_fails, SESSION, B3ApiError, "HTTP 503"),
    "timeout-forever": (_time_out_for_good, SESSION, B3ApiError, "timed out"),
    "html-page": (_html, SESSION, B3DataError, "HTML"),
    "malformed-json": (_malformed, SESSION, B3DataError, "malformed JSON"),
    "empty-results": (_empty, SESSION, B3DataError, "no portfolio rows"),
    "date-changes-between-pages": (_date_changes, SESSION, B3DataError, "changed the portfolio"),
    "page-2-empty": (_page_2_empty, SESSION, B3DataError, "footer total"),
    "not-yet-published": (B3Replay.serve_pages, date(2022, 12, 9), NotYetPublished, "not published yet"),
    "later-session-served": (B3Replay.serve_pages, date(2022, 12, 7), SessionNotAvailable, "from an archive"),
}


@pytest.mark.parametrize("case", list(FAILURES), ids=list(FAILURES))
def test_a_failed_fetch_leaves_the_lake_as_it_was(
    b3_replay: B3Replay, recorded: PortfolioSnapshot, tmp_path: Path, case: str
):
    root = tmp_path / "lake"
    lake = Lake(str(root))
    good_key = lake.write_table(partition_dir(RAW_CARTEIRA, "IBOV", SESSION), snapshot_to_table(recorded))
    good_bytes = (root / good_key).read_bytes()
    assert all_files(root) == [good_key]

    set_up, session, error, reason = FAILURES[case]
    set_up(b3_replay)
    with pytest.raises(error, match=reason):
        load_session(lake, live_source(b3_replay.base_url, session), "IBOV", session)

    assert [info.path for info in lake.list_files("raw")] == [lake.path(good_key)]
    assert all_files(root) == [good_key]  # no hidden .tmp file left behind either
    assert (root / good_key).read_bytes() == good_bytes
    assert b3_replay.received  # the failure really came from the (replayed) API


def test_a_good_fetch_replaces_the_partition_file(b3_replay: B3Replay, recorded: PortfolioSnapshot, tmp_path: Path):
    root = tmp_path / "lake"
    lake = Lake(str(root))
    good_key = lake.write_table(partition_dir(RAW_CARTEIRA, "IBOV", SESSION), snapshot_to_table(recorded))
    b3_replay.serve_pages()

    key = load_session(lake, live_source(b3_replay.base_url, SESSION), "IBOV", SESSION)

    assert key == good_key
    assert all_files(root) == [good_key]
    stored = lake.read_table(key)
    assert stored.column("cod").to_pylist() == [row.codigo for row in recorded.rows]
    assert set(stored.column("source").to_pylist()) == {"b3-api"}
