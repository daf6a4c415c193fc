"""Parsers for B3's portfolio formats: the CSV download and the GetPortfolioDay JSON response.

Both come in two number/date conventions (pt-br: ``1.243.177.587`` / ``2,663`` / DD/MM/YY;
en-us: ``1,243,177,587`` / ``2.663`` / MM/DD/YY). The convention is read off the published total
weight, which is always 100 (``100,000`` in pt-br, ``100.000`` in en-us), so a saved file needs no
side information. B3 has served latin-1 bytes labelled UTF-8, so bytes are decoded here, never by
the HTTP library.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

from .snapshot import B3DataError, PortfolioRow, PortfolioSnapshot, Provenance

PT_BR = "pt-br"
EN_US = "en-us"

_NUMBER = {
    PT_BR: re.compile(r"^-?\d{1,3}(?:\.\d{3})*(?:,\d+)?$|^-?\d+(?:,\d+)?$"),
    EN_US: re.compile(r"^-?\d{1,3}(?:,\d{3})*(?:\.\d+)?$|^-?\d+(?:\.\d+)?$"),
}
_TITLE = re.compile(r"^(?P<index>[A-Z0-9]{3,12})\s*-\s*.*?(?P<date>\d{1,2}/\d{1,2}/\d{2,4})\s*;*\s*$")
_FILE_NAME = re.compile(r"^(?P<index>[A-Z0-9]{3,12})Dia_(?P<d>\d{2})-(?P<m>\d{2})-(?P<y>\d{2})", re.IGNORECASE)


def decode(payload: bytes) -> str:
    """Valid UTF-8 (BOM dropped) if it is, else latin-1: B3 mixes both under one label."""
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


def parse_number(text: str, language: str, source: str) -> float:
    raw = (text or "").strip()
    if not _NUMBER[language].match(raw):
        raise B3DataError(source, f"{raw!r} is not a number in {language} format")
    return float(raw.replace(".", "").replace(",", ".") if language == PT_BR else raw.replace(",", ""))


def parse_int(text: str, language: str, source: str) -> int:
    value = parse_number(text, language, source)
    if value != int(value):
        raise B3DataError(source, f"{text!r} should be a whole number")
    return int(value)


def parse_date(text: str, language: str, source: str) -> date:
    """pt-br dates are DD/MM/YY, en-us dates MM/DD/YY (four-digit years accepted too)."""
    raw = text.strip()
    year_fmt = "%Y" if len(raw.rsplit("/", 1)[-1]) == 4 else "%y"
    fmt = f"%d/%m/{year_fmt}" if language == PT_BR else f"%m/%d/{year_fmt}"
    try:
        return datetime.strptime(raw, fmt).date()
    except ValueError:
        raise B3DataError(source, f"{raw!r} is not a {language} date ({fmt})") from None


def language_of_total(total_weight: str, source: str) -> str:
    """Which convention a response uses, read off its published total weight (always 100)."""
    for language in (PT_BR, EN_US):
        if _NUMBER[language].match(total_weight.strip()):
            value = float(
                total_weight.replace(".", "").replace(",", ".")
                if language == PT_BR
                else total_weight.replace(",", "")
            )
            if abs(value - 100) < 1:
                return language
    raise B3DataError(source, f"total weight {total_weight!r} is not 100 in pt-br or en-us format")


def date_from_file_name(name: str) -> tuple[str, date] | None:
    """(index, session) from B3's download name ``<INDEX>Dia_DD-MM-YY.csv``, if it is one."""
    match = _FILE_NAME.match(PurePath(name).name)
    if not match:
        return None
    try:
        day = date(2000 + int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        return None
    return match["index"].upper(), day


def parse_portfolio_csv(
    payload: bytes,
    location: str,
    provenance: Provenance | None = None,
) -> PortfolioSnapshot:
    """B3's 'Carteira do Dia' CSV, with or without its title line.

    The session comes from the title line (the session the portfolio is valid for); files whose
    title was stripped fall back to B3's file name ``<INDEX>Dia_DD-MM-YY.csv``.
    """
    text = decode(payload)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise B3DataError(location, "empty file")
    if lines[0].lstrip().startswith("<"):
        raise B3DataError(location, "an HTML page, not a B3 portfolio CSV")

    title = _TITLE.match(lines[0])
    body = lines[1:] if title else lines
    header_at = next((i for i, line in enumerate(body) if "(%)" in line or "Part." in line), None)
    if header_at is None:
        raise B3DataError(location, "no header line 'Código;Ação;Tipo;Qtde. Teórica;Part. (%)' found")
    rows_text, footer = [], {}
    for line in body[header_at + 1 :]:
        fields = [f.strip() for f in line.split(";")]
        if len(fields) >= 4 and fields[1] == "" and fields[2] == "":
            is_reductor = fields[0].lower().startswith(("redutor", "reductor"))
            footer["redutor" if is_reductor else "total"] = fields
        else:
            rows_text.append(fields)
    if "total" not in footer:
        raise B3DataError(location, "no footer line 'Quantidade Teórica Total;;;<sum>;100,000' (truncated file?)")
    total_fields = footer["total"]
    published_weight = total_fields[4] if len(total_fields) > 4 and total_fields[4] else "100,000"
    language = language_of_total(published_weight, location)

    if title:
        index = title["index"].upper()
        session = parse_date(title["date"], language, location)
    else:
        from_name = date_from_file_name(location)
        if from_name is None:
            raise B3DataError(
                location, "no title line with the session date and not named <INDEX>Dia_DD-MM-YY.csv"
            )
        index, session = from_name

    rows = []
    for number, fields in enumerate(rows_text, start=1):
        where = f"{location} (row {number})"
        if len(fields) < 5 or not fields[0]:
            raise B3DataError(where, f"expected 'code;asset;type;quantity;weight', got {';'.join(fields)!r}")
        rows.append(
            PortfolioRow(
                codigo=fields[0],
                acao=fields[1],
                tipo=fields[2],
                setor=None,
                participacao_pct=parse_number(fields[4], language, where),
                qtd_teorica=parse_int(fields[3], language, where),
            )
        )
    redutor = footer.get("redutor")
    return PortfolioSnapshot(
        indice=index,
        data_pregao=session,
        rows=tuple(rows),
        qtd_teorica_total=parse_int(total_fields[3], language, location),
        redutor=parse_number(redutor[3], language, location) if redutor else None,
        provenance=provenance or Provenance.of("archive-csv", location, payload),
        published_weight_pct=parse_number(published_weight, language, location),
    ).verify()


def load_json(payload: bytes, location: str) -> dict[str, Any]:
    """A GetPortfolioDay body as a dict, or a B3DataError saying what B3 sent instead."""
    text = decode(payload).strip()
    if not text:
        raise B3DataError(location, "empty response body")
    if text.startswith("<"):
        snippet = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))[:120].strip()
        raise B3DataError(location, f"B3 answered an HTML page instead of JSON: {snippet!r}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise B3DataError(location, f"malformed JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(document, dict) or "header" not in document or "results" not in document:
        raise B3DataError(location, "JSON without the 'header' and 'results' of a GetPortfolioDay response")
    return document


def parse_portfolio_json(
    document: dict[str, Any],
    index: str,
    location: str,
    provenance: Provenance,
) -> PortfolioSnapshot:
    """A (merged) GetPortfolioDay response. The response does not name its index: the caller does."""
    header = document.get("header") or {}
    results = document.get("results") or []
    if not results:
        raise B3DataError(location, f"B3 returned no portfolio rows for {index}")
    try:
        language = language_of_total(str(header.get("part") or "100,000"), location)
        rows = []
        for number, item in enumerate(results, start=1):
            where = f"{location} (result {number})"
            rows.append(
                PortfolioRow(
                    codigo=str(item["cod"]).strip(),
                    acao=str(item["asset"]).strip(),
                    tipo=str(item["type"]).strip(),
                    setor=(str(item["segment"]).strip() or None) if item.get("segment") else None,
                    participacao_pct=parse_number(str(item["part"]), language, where),
                    qtd_teorica=parse_int(str(item["theoricalQty"]), language, where),
                )
            )
        return PortfolioSnapshot(
            indice=index.upper(),
            data_pregao=parse_date(str(header["date"]), language, location),
            rows=tuple(rows),
            qtd_teorica_total=parse_int(str(header["theoricalQty"]), language, location),
            redutor=parse_number(str(header["reductor"]), language, location) if header.get("reductor") else None,
            provenance=provenance,
            published_weight_pct=parse_number(str(header.get("part") or "100,000"), language, location),
        ).verify()
    except (KeyError, TypeError) as exc:
        raise B3DataError(location, f"GetPortfolioDay response is missing field {exc}") from None


_JSON_NAME = re.compile(r"GetPortfolioDay_(?P<index>[A-Z0-9]{3,12})_", re.IGNORECASE)


def index_from_json_name(name: str) -> str | None:
    """Saved responses are named ``GetPortfolioDay_<INDEX>_...json`` (the body does not say)."""
    match = _JSON_NAME.match(PurePath(name).name)
    return match["index"].upper() if match else None


def read_portfolio_file(path: str, payload: bytes) -> PortfolioSnapshot:
    """One archived B3 file (CSV download or saved JSON response) → verified snapshot."""
    if path.lower().endswith(".json"):
        index = index_from_json_name(path)
        if index is None:
            raise B3DataError(path, "saved JSON responses must be named GetPortfolioDay_<INDEX>_....json")
        document = load_json(payload, path)
        return parse_portfolio_json(document, index, path, Provenance.of("archive-json", path, payload))
    if path.lower().endswith(".csv"):
        return parse_portfolio_csv(payload, path)
    raise B3DataError(path, "not a B3 portfolio file (expected .csv or .json)")
