"""CSV files trainers open in Excel: UTF-8 with BOM out, strict and explained decoding in."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

MAX_CSV_BYTES = 20 * 1024 * 1024
# Excel runs a cell starting with one of these as a formula (CSV injection); customer text is untrusted.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MOJIBAKE_HINTS = ("Ã", "Â", "Ä", "Æ", "á»", "Ä‘", "Æ°")


class CsvProblem(Exception):
    """A CSV file that cannot be read, with a message for the trainer."""


def protect_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def unprotect_cell(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_START) else value


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> int:
    """Write atomically as UTF-8 with BOM (Excel then shows Vietnamese correctly). Returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    n = 0
    for row in rows:
        w.writerow([protect_cell(str(c)) for c in row])
        n += 1
    atomic_write(path, buf.getvalue().encode("utf-8-sig"))
    return n


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file next to `path`, flush it to disk, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _looks_mojibake(text: str) -> bool:
    """UTF-8 bytes once decoded as Windows-1252/Latin-1 and saved again ("Tra cá»©u")."""
    if not any(h in text for h in _MOJIBAKE_HINTS):
        return False
    for enc in ("cp1252", "latin-1"):
        try:
            fixed = text.encode(enc).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if fixed != text:
            return True
    return False


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header (lower-cased) and rows as (spreadsheet row number, {column: value}); header is row 1."""
    if not path.exists():
        raise CsvProblem(f"{path}: không tìm thấy tệp")
    data = path.read_bytes()
    if len(data) > MAX_CSV_BYTES:
        raise CsvProblem(f"{path}: tệp quá lớn ({len(data) // 1024} KB, tối đa {MAX_CSV_BYTES // 1024} KB)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad_line = data[: exc.start].count(b"\n") + 1
        raise CsvProblem(
            f"{path}: dòng {bad_line}: tệp không phải UTF-8 (byte "
            f"0x{data[exc.start]:02x}); có lẽ đã lưu bằng bảng mã "
            "Windows-1258/ANSI. Trong Excel chọn Lưu thành → "
            "'CSV UTF-8 (Comma delimited) (*.csv)' rồi nhập lại."
        ) from None
    if "\x00" in text:
        raise CsvProblem(
            f"{path}: tệp có ký tự NUL: có thể là tệp UTF-16 hoặc tệp Excel (.xlsx), không phải CSV UTF-8"
        )
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader, None)
        if not header:
            raise CsvProblem(f"{path}: tệp rỗng (không có dòng tiêu đề)")
        header = [h.strip().lower() for h in header]
        rows: list[tuple[int, dict[str, str]]] = []
        for cells in reader:
            rownum = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                raise CsvProblem(
                    f"{path}: dòng {rownum}: có {len(cells)} ô nhưng tiêu đề chỉ có {len(header)} cột"
                )
            cells = cells + [""] * (len(header) - len(cells))
            row = {h: unprotect_cell(c) for h, c in zip(header, cells, strict=True)}
            for h, c in row.items():
                if _looks_mojibake(c):
                    raise CsvProblem(
                        f"{path}: dòng {rownum}, cột '{h}': chữ bị lỗi mã "
                        f"hóa ('{c[:40]}'): tệp đã bị mở/lưu sai bảng "
                        f"mã. Hãy xuất lại tệp hoặc lưu bằng 'CSV UTF-8'."
                    )
            rows.append((rownum, row))
    except csv.Error as exc:
        raise CsvProblem(f"{path}: dòng {reader.line_num}: CSV hỏng: {exc}") from None
    return header, rows
