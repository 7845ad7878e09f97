"""Draft documents: jinja2 templates (a tiny line markup) rendered to PDF with fpdf2 and DejaVu Sans.

Markup, one instruction per line: `# title`, `## heading`, `^ centred`, `> right-aligned`,
`- bullet`, `|| left | right` (two columns), `@qr <text>` (a QR code of the text, centred), `**…**` for
a bold line; other lines are paragraphs.
All text is NFC-normalised so Vietnamese stacked diacritics render and extract correctly.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import segno
from fpdf import FPDF

from .text import nfc

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    # Plain text output for the PDF layout, not HTML: autoescape would insert entities into contracts.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - PDF text, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_text(kind: str, data: dict[str, Any]) -> str:
    clean = {k: nfc(v) if isinstance(v, str) else v for k, v in data.items()}
    return nfc(_env().get_template(f"{kind}.txt.j2").render(**clean))


class _Pdf(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", size=8)
        self.cell(0, 6, f"Trang {self.page_no()}/{{nb}}", align="C")


def render_pdf(
    kind: str, data: dict[str, Any], created_at: datetime, title: str, fonts: dict[str, Path]
) -> bytes:
    """One draft as PDF bytes; `fonts` from `fonts.ensure_fonts` ({"": regular, "B": bold})."""
    text = render_text(kind, data)
    pdf = _Pdf(format="A4")
    pdf.set_creation_date(created_at)
    pdf.set_title(nfc(title))
    pdf.set_author(nfc(str(data.get("unit_name", ""))))
    pdf.set_creator("cskh-assistant signing service")
    pdf.add_font("DejaVu", "", str(fonts[""]))
    pdf.add_font("DejaVu", "B", str(fonts["B"]))
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    for raw in text.split("\n"):
        _line(pdf, raw.rstrip())
    return bytes(pdf.output())


def _line(pdf: FPDF, line: str) -> None:
    width = pdf.epw
    if not line:
        pdf.ln(2)
        return
    bold = False
    align = "J"
    size = 10.0
    if line.startswith("# "):
        line, bold, align, size = line[2:], True, "C", 13.0
        pdf.ln(3)
    elif line.startswith("## "):
        line, bold, align, size = line[3:], True, "L", 10.5
        pdf.ln(2)
    elif line.startswith("^ "):
        line, align = line[2:], "C"
    elif line.startswith("> "):
        line, align = line[2:], "R"
    elif line.startswith("- "):
        line = "• " + line[2:]
    elif line.startswith("@qr "):
        _qr(pdf, line[4:].strip())
        return
    elif line.startswith("|| "):
        left, _, right = line[3:].partition(" | ")
        pdf.set_font("DejaVu", "B", 10)
        pdf.cell(width / 2, 6, left, align="C")
        pdf.cell(width / 2, 6, right, align="C", new_x="LMARGIN", new_y="NEXT")
        return
    if line.startswith("**") and line.endswith("**"):
        line, bold = line[2:-2], True
    pdf.set_font("DejaVu", "B" if bold else "", size)
    pdf.multi_cell(width, size * 0.55, line, align=align, new_x="LMARGIN", new_y="NEXT")


QR_SIZE_MM = 32.0


def _qr(pdf: FPDF, text: str) -> None:
    """The QR code drawn as filled squares (vector: sharp at any zoom, no image to embed)."""
    matrix = [list(row) for row in segno.make(text, error="m").matrix]
    quiet = 2  # modules of white margin, included in the size
    count = len(matrix) + 2 * quiet
    module = QR_SIZE_MM / count
    if pdf.will_page_break(QR_SIZE_MM + 2):
        pdf.add_page()
    x0 = pdf.l_margin + (pdf.epw - QR_SIZE_MM) / 2 + quiet * module
    y0 = pdf.get_y() + 1 + quiet * module
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):  # one rectangle per horizontal run of dark modules
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                pdf.rect(x0 + start * module, y0 + r * module, (c - start) * module, module, style="F")
            else:
                c += 1
    pdf.set_y(pdf.get_y() + QR_SIZE_MM + 2)
