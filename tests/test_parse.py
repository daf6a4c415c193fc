"""Parsing B3's portfolio files: every real file in the repo, exact spot checks, decoding, bad input."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from conftest import FIXTURES, SAMPLE_ARCHIVE, real_b3_files

from bovespa_assets.b3.parse import (
    decode,
    load_json,
    parse_portfolio_json,
    read_portfolio_file,
)
from bovespa_assets.b3.snapshot import B3DataError, PortfolioRow, Provenance
from bovespa_assets.partitions import is_session

IBOV_DIR = SAMPLE_ARCHIVE / "IBOV"
IBXX_DIR = FIXTURES / "b3" / "IBXX"
API_JSON = SAMPLE_ARCHIVE / "api" / "GetPortfolioDay_IBOV_segment2_pt-br_2022-12-08.json"

LATIN1_TITLE_LF = IBOV_DIR / "IBOVDia_02-10-23.csv"  # RAW latin-1, title line, LF
LATIN1_TITLE_CRLF = IBOV_DIR / "IBOVDia_04-12-23.csv"  # RAW latin-1, title line, CRLF
UTF8_DERIVED = IBOV_DIR / "IBOVDia_03-02-25.csv"  # DERIVED: UTF-8, no title line, LF
IBXX_CRLF = IBXX_DIR / "IBXXDia_16-01-24.csv"  # RAW latin-1, title line, CRLF

HEADER = "Código;Ação;Tipo;Qtde. Teórica;Part. (%)"
ALL_FILES = real_b3_files()


def read(path: Path):
    return read_portfolio_file(str(path), path.read_bytes())


def expected_identity(path: Path) -> tuple[str, date]:
    """(index, session) as the file name says (SOURCES.md lists the same dates)."""
    csv_name = re.fullmatch(r"(?P<i>[A-Z0-9]+)Dia_(?P<d>\d\d)-(?P<m>\d\d)-(?P<y>\d\d)\.csv", path.name)
    if csv_name:
        return csv_name["i"], date(2000 + int(csv_name["y"]), int(csv_name["m"]), int(csv_name["d"]))
    json_name = re.fullmatch(r"GetPortfolioDay_(?P<i>[A-Z0-9]+)_.*_(?P<day>\d{4}-\d\d-\d\d)\.json", path.name)
    assert json_name, path.name
    return json_name["i"], date.fromisoformat(json_name["day"])


def raw_rows_and_total(path: Path) -> tuple[list[str], int]:
    """Tickers and footer total read straight off the file, independently of the parser under test."""
    payload = path.read_bytes()
    if path.suffix == ".json":
        document = json.loads(payload)
        return [r["cod"] for r in document["results"]], int(document["header"]["theoricalQty"].replace(".", ""))
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = payload.decode("latin-1")
    lines = text.splitlines()
    tickers = [line.split(";")[0] for line in lines if re.match(r"^[A-Z0-9]{4,8};", line)]
    (total_line,) = [line for line in lines if line.startswith("Quantidade Teórica Total;")]
    return tickers, int(total_line.split(";")[3].replace(".", ""))


def write(tmp_path: Path, name: str, payload: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(payload)
    return str(path)


def assert_b3_error(path: str, payload: bytes, reason: str) -> B3DataError:
    """read_portfolio_file fails with a B3DataError naming the file and matching `reason`."""
    with pytest.raises(B3DataError) as caught:
        read_portfolio_file(path, payload)
    error = caught.value
    assert error.source.startswith(path)
    assert path in str(error)
    assert re.search(reason, error.reason), error.reason
    return error


# --- every real file ----------------------------------------------------------------------------


def test_every_real_b3_file_is_listed():
    assert len(ALL_FILES) == 70
    assert sum(p.parent == IBOV_DIR for p in ALL_FILES) == 47
    assert sum(p.suffix == ".json" for p in ALL_FILES) == 1
    assert sum(p.parent == IBXX_DIR for p in ALL_FILES) == 22


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_real_file_parses_and_adds_up(path: Path):
    snapshot = read(path)
    index, session = expected_identity(path)
    tickers, footer_total = raw_rows_and_total(path)

    assert (snapshot.indice, snapshot.data_pregao) == (index, session)
    assert is_session(snapshot.data_pregao)
    assert [r.codigo for r in snapshot.rows] == tickers
    assert snapshot.qtd_teorica_total == footer_total
    assert sum(r.qtd_teorica for r in snapshot.rows) == snapshot.qtd_teorica_total
    assert abs(sum(r.participacao_pct for r in snapshot.rows) - 100) <= 0.01
    assert all(r.codigo and r.acao and r.tipo for r in snapshot.rows)
    assert all(r.qtd_teorica > 0 and r.participacao_pct > 0 for r in snapshot.rows)
    assert snapshot.redutor is not None and snapshot.redutor > 0
    if path.suffix == ".csv":
        assert all(r.setor is None for r in snapshot.rows)
        assert snapshot.provenance.source == "archive-csv"
    else:
        assert snapshot.provenance.source == "archive-json"
    assert snapshot.provenance.location == str(path)


# --- exact values, read off the files by hand -------------------------------------------------

SPOT_CHECKS = [
    pytest.param(
        LATIN1_TITLE_LF,
        "IBOV",
        date(2023, 10, 2),
        86,
        98_476_454_882,
        17_486_930.35034135,
        [
            # WEGE3;WEG;ON  EJ  NM;1.481.593.024;2,636;
            PortfolioRow("WEGE3", "WEG", "ON  EJ  NM", None, 2.636, 1_481_593_024),
            # VALE3;VALE;ON      NM;4.427.123.466;14,678;
            PortfolioRow("VALE3", "VALE", "ON      NM", None, 14.678, 4_427_123_466),
        ],
        id="latin1-title-LF",
    ),
    pytest.param(
        LATIN1_TITLE_CRLF,
        "IBOV",
        date(2023, 12, 4),
        86,
        98_736_320_210,
        17_294_302.62532316,
        # BBDC4;BRADESCO;PN  EJ  N1;5.146.576.868;3,785;
        [PortfolioRow("BBDC4", "BRADESCO", "PN  EJ  N1", None, 3.785, 5_146_576_868)],
        id="latin1-title-CRLF",
    ),
    pytest.param(
        UTF8_DERIVED,
        "IBOV",
        date(2025, 2, 3),
        87,
        98_374_532_289,
        16_274_591.56755839,
        [
            # WEGE3;WEG;ON      NM;1.243.177.587;3,333;
            PortfolioRow("WEGE3", "WEG", "ON      NM", None, 3.333, 1_243_177_587),
            # ABEV3;AMBEV S/A;ON;4.394.835.131;2,376;  (a type without listing segment)
            PortfolioRow("ABEV3", "AMBEV S/A", "ON", None, 2.376, 4_394_835_131),
        ],
        id="utf8-derived-no-title",
    ),
    pytest.param(
        IBXX_CRLF,
        "IBXX",
        date(2024, 1, 16),
        100,
        101_850_793_462,
        42_713_060.37085682,
        [
            # ITUB4;ITAUUNIBANCO;PN      N1;4.801.593.832;6,790;
            PortfolioRow("ITUB4", "ITAUUNIBANCO", "PN      N1", None, 6.790, 4_801_593_832),
            # WEGE3;WEG;ON      NM;1.481.593.024;2,150;
            PortfolioRow("WEGE3", "WEG", "ON      NM", None, 2.150, 1_481_593_024),
        ],
        id="ibxx-CRLF",
    ),
    pytest.param(
        API_JSON,
        "IBOV",
        date(2022, 12, 8),
        92,
        101_053_551_382,
        18_553_794.8744595,  # "18.553.794,87445950"
        [
            # {"segment":"Bens Indls / M\ufffdqs e Equips","cod":"WEGE3","asset":"WEG",
            #  "type":"ON      NM","part":"2,728","theoricalQty":"1.481.593.024"}
            PortfolioRow("WEGE3", "WEG", "ON      NM", "Bens Indls / M\ufffdqs e Equips", 2.728, 1_481_593_024),
            PortfolioRow(
                "VALE3", "VALE", "ON      NM", "Mats B\ufffdsicos / Minera\ufffd\ufffdo", 19.064, 4_547_296_398
            ),
            PortfolioRow(
                "ITUB4", "ITAUUNIBANCO", "PN  EJ  N1", "Financ e Outros / Interms Financs", 6.157, 4_799_907_051
            ),
        ],
        id="api-json-pt-br",
    ),
]


@pytest.mark.parametrize(("path", "index", "session", "n_rows", "total", "redutor", "rows"), SPOT_CHECKS)
def test_exact_values(path, index, session, n_rows, total, redutor, rows):
    snapshot = read(path)
    assert snapshot.indice == index
    assert snapshot.data_pregao == session
    assert len(snapshot.rows) == n_rows
    assert snapshot.qtd_teorica_total == total
    assert snapshot.redutor == redutor
    assert snapshot.published_weight_pct == 100.0
    by_code = {r.codigo: r for r in snapshot.rows}
    for row in rows:
        assert by_code[row.codigo] == row


def test_spot_check_files_are_of_the_kinds_claimed():
    for path in (LATIN1_TITLE_LF, LATIN1_TITLE_CRLF, IBXX_CRLF):
        payload = path.read_bytes()
        with pytest.raises(UnicodeDecodeError):
            payload.decode("utf-8")
        assert re.match(rb"IB(OV|XX) - Carteira do Dia \d\d/\d\d/\d\d", payload)
    assert b"\r\n" not in LATIN1_TITLE_LF.read_bytes()
    assert b"\r\n" in LATIN1_TITLE_CRLF.read_bytes()
    assert b"\r\n" in IBXX_CRLF.read_bytes()
    derived = UTF8_DERIVED.read_bytes()
    assert derived.decode("utf-8").startswith(HEADER)


def test_rows_keep_b3_file_order():
    snapshot = read(LATIN1_TITLE_LF)
    assert snapshot.rows[0] == PortfolioRow("RRRP3", "3R PETROLEUM", "ON      NM", None, 0.365, 235_661_666)
    assert snapshot.rows[-1] == PortfolioRow("YDUQ3", "YDUQS PART", "ON      NM", None, 0.282, 289_347_914)


# --- the saved API response ------------------------------------------------------------------


def test_json_sectors_come_from_segment_as_recorded():
    snapshot = read(API_JSON)
    document = json.loads(API_JSON.read_bytes())
    assert document["page"]["totalRecords"] == 92
    assert len(snapshot.rows) == 92
    assert snapshot.data_pregao == date(2022, 12, 8)
    assert [r.setor for r in snapshot.rows] == [item["segment"] for item in document["results"]]
    assert all(r.setor for r in snapshot.rows)
    # The recorder replaced B3's latin-1 accents with U+FFFD; the parser keeps what was recorded.
    with_replacement = {r.setor for r in snapshot.rows if "\ufffd" in r.setor}
    assert "Bens Indls / M\ufffdqs e Equips" in with_replacement
    assert "Petr\ufffdleo, G\ufffds e Biocombust\ufffdveis" in with_replacement


def to_en_us(document: dict) -> dict:
    """The same response as B3 writes it for language=en-us.

    DERIVED from the real pt-br recording, NOT a real en-us recording: every number has its
    separators swapped (``1.481.593.024`` -> ``1,481,593,024``, ``2,728`` -> ``2.728``) and the
    header date goes DD/MM/YY -> MM/DD/YY (``08/12/22`` -> ``12/08/22``), as SOURCES.md describes.
    """
    swap = str.maketrans(".,", ",.")
    day, month, year = document["header"]["date"].split("/")
    header = {
        **document["header"],
        "date": f"{month}/{day}/{year}",
        **{k: document["header"][k].translate(swap) for k in ("part", "partAcum", "reductor", "theoricalQty")},
    }
    results = [
        {**item, **{k: item[k].translate(swap) for k in ("part", "partAcum", "theoricalQty")}}
        for item in document["results"]
    ]
    return {**document, "header": header, "results": results}


def test_en_us_response_parses_to_the_same_snapshot():
    payload = API_JSON.read_bytes()
    pt_doc = load_json(payload, str(API_JSON))
    en_doc = to_en_us(pt_doc)
    # The derivation did what it says on the real values.
    wege = next(item for item in en_doc["results"] if item["cod"] == "WEGE3")
    assert (wege["theoricalQty"], wege["part"]) == ("1,481,593,024", "2.728")
    assert en_doc["header"]["date"] == "12/08/22"
    assert en_doc["header"]["part"] == "100.000"
    assert en_doc["header"]["reductor"] == "18,553,794.87445950"

    en_payload = json.dumps(en_doc, ensure_ascii=False).encode("utf-8")
    en_location = "derived/GetPortfolioDay_IBOV_segment2_en-us_2022-12-08.json"
    pt = parse_portfolio_json(pt_doc, "IBOV", str(API_JSON), Provenance.of("archive-json", str(API_JSON), payload))
    en = parse_portfolio_json(
        load_json(en_payload, en_location),
        "IBOV",
        en_location,
        Provenance.of("archive-json", en_location, en_payload),
    )
    assert en.data_pregao == pt.data_pregao == date(2022, 12, 8)  # not 2022-08-12
    assert en.rows == pt.rows
    assert en.qtd_teorica_total == pt.qtd_teorica_total
    assert en.redutor == pt.redutor
    assert en.published_weight_pct == pt.published_weight_pct == 100.0


# --- decoding --------------------------------------------------------------------------------


def test_latin1_bytes_decode_with_correct_accents():
    payload = LATIN1_TITLE_LF.read_bytes()
    text = decode(payload)
    assert text.splitlines()[1] == HEADER
    assert "Quantidade Teórica Total" in text
    assert "\ufffd" not in text


def test_utf8_bytes_decode_with_correct_accents():
    text = decode(UTF8_DERIVED.read_bytes())
    assert text.splitlines()[0] == HEADER
    assert "Ã" not in text  # not mis-decoded as latin-1


def test_utf8_with_bom(tmp_path):
    payload = b"\xef\xbb\xbf" + UTF8_DERIVED.read_bytes()
    assert decode(payload).startswith(HEADER)
    snapshot = read_portfolio_file(write(tmp_path, UTF8_DERIVED.name, payload), payload)
    assert snapshot.rows == read(UTF8_DERIVED).rows
    assert snapshot.data_pregao == date(2025, 2, 3)


def test_same_file_in_utf8_parses_like_latin1(tmp_path):
    payload = LATIN1_TITLE_CRLF.read_bytes().decode("latin-1").encode("utf-8")
    snapshot = read_portfolio_file(write(tmp_path, LATIN1_TITLE_CRLF.name, payload), payload)
    original = read(LATIN1_TITLE_CRLF)
    assert (snapshot.indice, snapshot.data_pregao, snapshot.rows) == (
        original.indice,
        original.data_pregao,
        original.rows,
    )


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"\r\n\r\n  \n"], ids=["empty", "blank-lines"])
def test_empty_file(tmp_path, payload):
    path = write(tmp_path, LATIN1_TITLE_LF.name, payload)
    assert_b3_error(path, payload, "empty file")


def test_html_page(tmp_path):
    payload = (
        b"<!DOCTYPE html>\r\n<html><head><title>B3 - Erro</title></head>"
        b"<body><h1>Servi\xe7o indispon\xedvel</h1></body></html>\r\n"
    )
    path = write(tmp_path, LATIN1_TITLE_LF.name, payload)
    assert_b3_error(path, payload, "HTML page")


@pytest.mark.parametrize("keep_lines", [-2, -1, 40], ids=["no-footer", "no-total-line", "cut-mid-rows"])
def test_truncated_file(tmp_path, keep_lines):
    lines = IBXX_CRLF.read_bytes().splitlines(keepends=True)
    # keep_lines == -1: drop only the total line, keep the reductor
    lines = [ln for ln in lines if not ln.startswith(b"Quantidade")] if keep_lines == -1 else lines[:keep_lines]
    payload = b"".join(lines)
    path = write(tmp_path, IBXX_CRLF.name, payload)
    assert_b3_error(path, payload, "no footer line.*truncated")


def test_quantity_altered_so_total_mismatches(tmp_path):
    original = LATIN1_TITLE_LF.read_bytes()
    row = b"WEGE3;WEG;ON  EJ  NM;1.481.593.024;2,636;"
    assert original.count(row) == 1
    payload = original.replace(row, b"WEGE3;WEG;ON  EJ  NM;1.481.593.025;2,636;")
    path = write(tmp_path, LATIN1_TITLE_LF.name, payload)
    assert_b3_error(path, payload, r"add up to 98,476,454,883 but the footer total is 98,476,454,882")


def test_weight_altered_beyond_tolerance(tmp_path):
    original = LATIN1_TITLE_LF.read_bytes()
    row = b"WEGE3;WEG;ON  EJ  NM;1.481.593.024;2,636;"
    payload = original.replace(row, b"WEGE3;WEG;ON  EJ  NM;1.481.593.024;2,656;")
    path = write(tmp_path, LATIN1_TITLE_LF.name, payload)
    assert_b3_error(path, payload, r"weights add up to 100\.020% instead of 100\.000%")


def test_weight_within_rounding_tolerance_is_accepted(tmp_path):
    original = LATIN1_TITLE_LF.read_bytes()
    row = b"WEGE3;WEG;ON  EJ  NM;1.481.593.024;2,636;"
    payload = original.replace(row, b"WEGE3;WEG;ON  EJ  NM;1.481.593.024;2,641;")
    snapshot = read_portfolio_file(write(tmp_path, LATIN1_TITLE_LF.name, payload), payload)
    assert abs(snapshot.total_weight_pct - 100.005) < 1e-9


@pytest.mark.parametrize(
    ("altered", "bad"),
    [
        (b"WEGE3;WEG;ON  EJ  NM;1.481.593.O24;2,636;", "1.481.593.O24"),
        (b"WEGE3;WEG;ON  EJ  NM;1.481.593.024;n/d;", "n/d"),
        (b"WEGE3;WEG;ON  EJ  NM;1,481,593,024;2,636;", "1,481,593,024"),  # en-us number in a pt-br file
        (b"WEGE3;WEG;ON  EJ  NM;;2,636;", ""),
    ],
    ids=["letter-in-quantity", "text-weight", "en-us-number", "empty-quantity"],
)
def test_non_number_in_number_field(tmp_path, altered, bad):
    original = LATIN1_TITLE_LF.read_bytes()
    payload = original.replace(b"WEGE3;WEG;ON  EJ  NM;1.481.593.024;2,636;", altered)
    assert payload != original
    path = write(tmp_path, LATIN1_TITLE_LF.name, payload)
    error = assert_b3_error(path, payload, re.escape(f"{bad!r} is not a number in pt-br format"))
    assert error.source == f"{path} (row 85)"  # WEGE3 is the 85th portfolio row


def test_row_with_missing_fields(tmp_path):
    payload = LATIN1_TITLE_LF.read_bytes().replace(b"WEGE3;WEG;ON  EJ  NM;1.481.593.024;2,636;", b"WEGE3;WEG")
    path = write(tmp_path, LATIN1_TITLE_LF.name, payload)
    assert_b3_error(path, payload, "expected 'code;asset;type;quantity;weight'")


def test_malformed_json(tmp_path):
    original = API_JSON.read_bytes()
    payload = original[: len(original) // 2]
    path = write(tmp_path, API_JSON.name, payload)
    assert_b3_error(path, payload, "malformed JSON")


def test_json_with_empty_results(tmp_path):
    document = json.loads(API_JSON.read_bytes())
    document["results"] = []
    payload = json.dumps(document).encode()
    path = write(tmp_path, API_JSON.name, payload)
    assert_b3_error(path, payload, "no portfolio rows for IBOV")


def test_json_missing_a_field(tmp_path):
    document = json.loads(API_JSON.read_bytes())
    del document["header"]["theoricalQty"]
    payload = json.dumps(document).encode()
    path = write(tmp_path, API_JSON.name, payload)
    assert_b3_error(path, payload, "missing field 'theoricalQty'")


def test_json_html_body(tmp_path):
    payload = b"<html><body><h1>403 Forbidden</h1></body></html>"
    path = write(tmp_path, API_JSON.name, payload)
    assert_b3_error(path, payload, "HTML page instead of JSON.*403 Forbidden")


def test_json_without_index_in_name(tmp_path):
    payload = API_JSON.read_bytes()
    path = write(tmp_path, "response.json", payload)
    assert_b3_error(path, payload, "must be named GetPortfolioDay_<INDEX>_")


@pytest.mark.parametrize("name", ["IBOVDia_02-10-23.txt", "IBOVDia_02-10-23.xlsx", "IBOVDia_02-10-23"])
def test_unknown_extension(tmp_path, name):
    payload = LATIN1_TITLE_LF.read_bytes()
    path = write(tmp_path, name, payload)
    assert_b3_error(path, payload, r"not a B3 portfolio file \(expected \.csv or \.json\)")


def test_title_less_csv_with_non_b3_name(tmp_path):
    payload = UTF8_DERIVED.read_bytes()
    path = write(tmp_path, "carteira.csv", payload)
    assert_b3_error(path, payload, "no title line with the session date")


def test_title_line_wins_over_a_non_b3_name(tmp_path):
    payload = LATIN1_TITLE_LF.read_bytes()
    snapshot = read_portfolio_file(write(tmp_path, "carteira.csv", payload), payload)
    assert (snapshot.indice, snapshot.data_pregao) == ("IBOV", date(2023, 10, 2))
