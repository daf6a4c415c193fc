"""PortfolioArchive over the bundled sample archive, the IBXX fixtures and deliberately broken folders."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest
from conftest import FIXTURES, SAMPLE_ARCHIVE

from bovespa_assets.b3.archive import PortfolioArchive
from bovespa_assets.b3.parse import date_from_file_name
from bovespa_assets.b3.snapshot import B3DataError
from bovespa_assets.partitions import sessions_between

IBOV_DIR = SAMPLE_ARCHIVE / "IBOV"
IBXX_DIR = FIXTURES / "b3" / "IBXX"
API_JSON = SAMPLE_ARCHIVE / "api" / "GetPortfolioDay_IBOV_segment2_pt-br_2022-12-08.json"
LATIN1_WITH_TITLE = IBOV_DIR / "IBOVDia_02-10-23.csv"  # "IBOV - Carteira do Dia 02/10/23"


@pytest.fixture(scope="module")
def sample() -> PortfolioArchive:
    return PortfolioArchive(str(SAMPLE_ARCHIVE))


def sessions_named_in(folder: Path) -> list[date]:
    return sorted(date_from_file_name(p.name)[1] for p in folder.glob("*.csv"))


def test_sample_archive_sessions(sample):
    sessions = sample.sessions("IBOV")
    assert len(sessions) == 48
    assert sessions == sorted(set(sessions))
    # 47 CSVs found by name, plus the saved JSON response (opened to learn its session).
    assert sessions == sorted([*sessions_named_in(IBOV_DIR), date(2022, 12, 8)])
    assert sessions[0] == date(2021, 9, 27)
    assert sessions[-1] == date(2025, 3, 20)


def test_sample_archive_has_every_session_of_feb_mar_2025(sample):
    run = sessions_between(date(2025, 2, 3), date(2025, 3, 20))
    assert len(run) == 32
    assert set(run) <= set(sample.sessions("IBOV"))
    # Carnival Monday and Tuesday are no sessions, so no files.
    assert date(2025, 3, 3) not in run
    assert date(2025, 3, 4) not in run


def test_sessions_and_find_ignore_index_case(sample):
    assert sample.sessions("ibov") == sample.sessions("IBOV")
    assert sample.find("ibov", date(2023, 10, 2)).indice == "IBOV"


def test_indices(sample):
    assert sample.indices() == ["IBOV"]
    assert sample.sessions("IBXX") == []


def test_find_returns_verified_csv_snapshot(sample):
    snapshot = sample.find("IBOV", date(2023, 10, 2))
    assert snapshot is not None
    assert (snapshot.indice, snapshot.data_pregao) == ("IBOV", date(2023, 10, 2))
    assert len(snapshot.rows) == 86
    assert snapshot.qtd_teorica_total == 98_476_454_882 == sum(r.qtd_teorica for r in snapshot.rows)
    assert snapshot.provenance.source == "archive-csv"
    assert Path(snapshot.provenance.location) == LATIN1_WITH_TITLE


def test_find_title_less_derived_file(sample):
    snapshot = sample.find("IBOV", date(2025, 3, 20))
    assert snapshot is not None
    assert snapshot.data_pregao == date(2025, 3, 20)
    assert Path(snapshot.provenance.location) == IBOV_DIR / "IBOVDia_20-03-25.csv"


def test_find_returns_the_saved_json(sample):
    snapshot = sample.find("IBOV", date(2022, 12, 8))
    assert snapshot is not None
    assert snapshot.provenance.source == "archive-json"
    assert Path(snapshot.provenance.location) == API_JSON
    assert len(snapshot.rows) == 92
    assert all(r.setor for r in snapshot.rows)


@pytest.mark.parametrize(
    ("index", "session"),
    [
        ("IBOV", date(2025, 3, 21)),  # a session after the archive ends
        ("IBOV", date(2025, 3, 4)),  # Carnival: no session at all
        ("IBOV", date(2020, 1, 2)),  # before the archive starts
        ("IBXX", date(2023, 10, 2)),  # an index this archive does not hold
    ],
)
def test_find_without_a_file_returns_none(sample, index, session):
    assert sample.find(index, session) is None


def test_ibxx_fixture_archive():
    archive = PortfolioArchive(str(IBXX_DIR))
    assert archive.indices() == ["IBXX"]
    assert archive.sessions("IBXX") == sessions_named_in(IBXX_DIR)
    assert len(archive.sessions("IBXX")) == 22
    assert archive.sessions("IBOV") == []
    snapshot = archive.find("IBXX", date(2024, 1, 16))
    assert snapshot is not None
    assert (snapshot.indice, len(snapshot.rows), snapshot.qtd_teorica_total) == ("IBXX", 100, 101_850_793_462)


def test_file_named_for_another_session_is_an_error(tmp_path):
    wrong = tmp_path / "IBOVDia_03-10-23.csv"  # holds the 02/10/23 portfolio
    shutil.copyfile(LATIN1_WITH_TITLE, wrong)
    archive = PortfolioArchive(str(tmp_path))
    assert archive.sessions("IBOV") == [date(2023, 10, 3)]  # listed by name, unopened
    with pytest.raises(B3DataError) as caught:
        archive.find("IBOV", date(2023, 10, 3))
    assert caught.value.source == str(wrong)
    assert str(wrong) in str(caught.value)
    assert re.search(r"named for IBOV 2023-10-03 but it holds IBOV 2023-10-02", caught.value.reason)


def test_file_named_for_another_index_is_an_error(tmp_path):
    wrong = tmp_path / "IBXXDia_02-10-23.csv"  # an IBOV portfolio under an IBXX name
    shutil.copyfile(LATIN1_WITH_TITLE, wrong)
    archive = PortfolioArchive(str(tmp_path))
    with pytest.raises(B3DataError, match="named for IBXX 2023-10-02 but it holds IBOV 2023-10-02") as caught:
        archive.find("IBXX", date(2023, 10, 2))
    assert caught.value.source == str(wrong)


def test_missing_folder_is_an_error(tmp_path):
    missing = str(tmp_path / "no-such-archive")
    archive = PortfolioArchive(missing)
    with pytest.raises(B3DataError, match="archive folder does not exist") as caught:
        archive.sessions("IBOV")
    assert caught.value.source == missing


def test_non_b3_name_is_found_by_its_title(tmp_path):
    shutil.copyfile(LATIN1_WITH_TITLE, tmp_path / "carteira.csv")
    archive = PortfolioArchive(str(tmp_path))
    assert archive.indices() == ["IBOV"]
    assert archive.sessions("IBOV") == [date(2023, 10, 2)]
    snapshot = archive.find("IBOV", date(2023, 10, 2))
    assert snapshot is not None
    assert Path(snapshot.provenance.location) == tmp_path / "carteira.csv"


def test_title_less_file_with_non_b3_name_is_an_error(tmp_path):
    bad = tmp_path / "carteira.csv"
    shutil.copyfile(IBOV_DIR / "IBOVDia_03-02-25.csv", bad)  # DERIVED: the date was only in the name
    archive = PortfolioArchive(str(tmp_path))
    with pytest.raises(B3DataError, match="no title line") as caught:
        archive.sessions("IBOV")
    assert caught.value.source == str(bad)


def test_hidden_and_unrelated_files_are_ignored(tmp_path):
    shutil.copyfile(LATIN1_WITH_TITLE, tmp_path / LATIN1_WITH_TITLE.name)
    (tmp_path / ".IBOVDia_03-10-23.csv").write_bytes(b"")
    (tmp_path / "_SUCCESS").write_bytes(b"")
    (tmp_path / "README.md").write_text("not a portfolio")
    (tmp_path / "notes.json").write_text("{}")
    archive = PortfolioArchive(str(tmp_path))
    assert archive.sessions("IBOV") == [date(2023, 10, 2)]


def test_nested_folders_are_searched(tmp_path):
    (tmp_path / "2023" / "10").mkdir(parents=True)
    shutil.copyfile(LATIN1_WITH_TITLE, tmp_path / "2023" / "10" / LATIN1_WITH_TITLE.name)
    shutil.copyfile(IBXX_DIR / "IBXXDia_16-01-24.csv", tmp_path / "IBXXDia_16-01-24.csv")
    archive = PortfolioArchive(str(tmp_path))
    assert archive.indices() == ["IBOV", "IBXX"]
    assert archive.find("IBOV", date(2023, 10, 2)).data_pregao == date(2023, 10, 2)
    assert archive.find("IBXX", date(2024, 1, 16)).data_pregao == date(2024, 1, 16)


def test_file_uri(sample):
    archive = PortfolioArchive(SAMPLE_ARCHIVE.as_uri())
    assert archive.sessions("IBOV") == sample.sessions("IBOV")
    assert archive.find("IBOV", date(2024, 1, 31)).data_pregao == date(2024, 1, 31)


@pytest.mark.parametrize(
    "name",
    [
        "GetPortfolioDay_IBOV_recording.yml",  # e.g. the recorder cassette the saved JSON came from
        "GetPortfolioDay_IBOV_segment2_pt-br_2022-12-08.json.bak",
        "GetPortfolioDay_IBOV_segment2_pt-br_2022-12-08.json.gz",
    ],
)
def test_non_json_files_named_like_a_response_are_ignored(tmp_path, name):
    shutil.copyfile(LATIN1_WITH_TITLE, tmp_path / LATIN1_WITH_TITLE.name)
    (tmp_path / name).write_bytes(b"interactions:\n- request: {}\n")
    archive = PortfolioArchive(str(tmp_path))
    assert archive.sessions("IBOV") == [date(2023, 10, 2)]


def test_saved_json_with_another_name_case_is_found(tmp_path):
    shutil.copyfile(API_JSON, tmp_path / "GetPortfolioDay_ibov_saved.JSON")
    archive = PortfolioArchive(str(tmp_path))
    assert archive.sessions("IBOV") == [date(2022, 12, 8)]
    assert len(archive.find("IBOV", date(2022, 12, 8)).rows) == 92
