"""Yahoo prices without network: the archive's yfinance CSV, and yfinance itself against a local
server replaying chart answers built from the real ^BVSP CSV (fixtures/yahoo/SOURCES.md).
"""

from __future__ import annotations

from datetime import date

import pytest
from price_lake import BVSP_CSV, real_bvsp
from yahoo_replay import YahooReplay

from bovespa_assets.partitions import sessions_between
from bovespa_assets.settings import SAMPLE_PRICES
from bovespa_assets.yahoo.archive import PriceArchive
from bovespa_assets.yahoo.client import YahooClient
from bovespa_assets.yahoo.prices import PriceDataError, read_yfinance_csv
from bovespa_assets.yahoo.source import PriceSource


@pytest.fixture(scope="module")
def replay():
    with YahooReplay() as server:
        yield server


@pytest.fixture
def client(replay, tmp_path):
    return YahooClient(session=replay.session(), cache_dir=str(tmp_path / "yfinance"))


def test_the_archive_reads_every_real_bar_of_the_yfinance_csv():
    [(symbol, bars)] = read_yfinance_csv(str(BVSP_CSV), BVSP_CSV.read_bytes()).items()
    real = real_bvsp()
    assert symbol == "^BVSP" and len(bars) == len(real) == 4331
    assert bars.loc[date(2025, 6, 27)].to_dict() == {"Open": 137113.0, "High": 137209.0, "Low": 136469.0,
                                                     "Close": 136866.0, "Volume": 6244500}
    assert (bars[["Open", "High", "Low", "Close", "Volume"]].to_numpy() == real[list(bars.columns)].to_numpy()).all()
    assert PriceArchive(SAMPLE_PRICES).symbols() == ["^BVSP"]


@pytest.mark.parametrize(("content", "reason"), [
    (b"Date,Open,High\n2025-01-02,1,2\n", "expected header rows Price/Ticker/Date"),
    (b"Price,Close,High,Low,Open,Volume\nTicker,^BVSP,^BVSP,^BVSP,^BVSP,^BVSP\nDate,,,,,\n"
     b"2025-01-02,1.0,2.0,x,1.0,5\n", "^BVSP Low on 2025-01-02: not a number: 'x'"),
    (b"Price,Close,High,Low,Open,Volume\nTicker,^BVSP,^BVSP,^BVSP,^BVSP,^BVSP\nDate,,,,,\n"
     b"2025-01-02,1.0,2.0,,1.0,5\n", "incomplete bar on 2025-01-02"),
    (b"Price,Close,High,Low,Open,Volume\nTicker,^BVSP,^BVSP,^BVSP,^BVSP,^BVSP\nDate,,,,,\n"
     b"2025-01-02,1.0,2.0,1.0,1.0,5\n2025-01-02,1.0,2.0,1.0,1.0,5\n", "more than one bar for 2025-01-02"),
])
def test_a_bad_csv_is_refused_naming_the_file_and_the_reason(content, reason):
    with pytest.raises(PriceDataError) as error:
        read_yfinance_csv("/archive/bad.csv", content)
    assert str(error.value).startswith("/archive/bad.csv") and reason in str(error.value)


def test_yfinance_replayed_returns_the_real_bars_across_the_holiday_gap(client, replay):
    bars, provenance = client.history("^BVSP", date(2024, 12, 16), date(2025, 1, 10))
    real = real_bvsp()
    expected = real[(real.index >= date(2024, 12, 16)) & (real.index <= date(2025, 1, 10))]
    assert list(bars.index) == list(expected.index)
    assert {date(2024, 12, 24), date(2024, 12, 25), date(2024, 12, 31), date(2025, 1, 1)}.isdisjoint(bars.index)
    assert (bars.to_numpy() == expected[list(bars.columns)].to_numpy()).all()
    assert list(bars.index) == sessions_between(date(2024, 12, 16), date(2025, 1, 10))  # no B3 session lost
    assert provenance.source == "yfinance" and "/v8/finance/chart/^BVSP" in provenance.location
    chart = replay.chart_requests()[-1]
    assert chart["interval"] == "1d" and chart["period1"] == "1734318000"  # 2024-12-16 00:00 in São Paulo


def test_an_empty_answer_is_no_bars_not_an_error(client):
    bars, _ = client.history("^BVSP", date(2025, 3, 3), date(2025, 3, 4))  # Carnival: Yahoo answers no bars
    assert bars.empty


def test_a_b3_session_with_no_yahoo_row_is_missing_never_invented(client):
    sessions = sessions_between(date(2020, 11, 16), date(2020, 11, 27))
    assert date(2020, 11, 20) in sessions  # a B3 session in the calendar, with no Yahoo bar
    found = PriceSource(None, client).bars("^BVSP", sessions)
    assert sorted(found) == [s for s in sessions if s != date(2020, 11, 20)]
    assert found[date(2020, 11, 19)][0]["Close"] == real_bvsp().loc[date(2020, 11, 19), "Close"]


def test_yahoo_down_is_a_clear_error_naming_the_request(tmp_path):
    with YahooReplay(chart_status=500) as down:
        client = YahooClient(session=down.session(), cache_dir=str(tmp_path / "yfinance"))
        with pytest.raises(PriceDataError) as error:  # a range not asked before (yfinance caches answers)
            client.history("^BVSP", date(2019, 1, 2), date(2019, 1, 4))
    assert "v8/finance/chart/^BVSP" in str(error.value) and "2019-01-02" in str(error.value)


def test_the_archive_comes_first_and_yahoo_only_for_what_it_lacks(client, replay, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    lines = BVSP_CSV.read_text().splitlines()
    kept = [ln for ln in lines[3:] if "2024-12-16" <= ln[:10] <= "2024-12-20"]
    (archive / "part.csv").write_text("\n".join(lines[:3] + kept) + "\n")
    before = len(replay.chart_requests())
    sessions = sessions_between(date(2024, 12, 16), date(2024, 12, 20))
    found = PriceSource(PriceArchive(str(archive)), client).bars("^BVSP", sessions)
    assert sorted(found) == sessions and {p.source for _, p in found.values()} == {"archive-csv"}
    assert len(replay.chart_requests()) == before  # nothing asked of Yahoo
