"""Reading NLU files with line numbers, and editing them without touching unchanged lines."""

from __future__ import annotations

from pathlib import Path

from trainer import nludata

TEXT = """version: "3.1"

nlu:
# chào hỏi
- intent: greet
  examples: |
    - xin chào
    - chào [Tam Kỳ](power_unit)

- intent: goodbye
  examples: |
    - tạm biệt
  metadata:
    owner: cskh

- regex: request_code
  examples: |
    - PC\\d{2}
"""


def parse() -> nludata.NluFile:
    return nludata.parse_text(Path("x.yml"), TEXT)


def test_examples_carry_their_line_and_plain_text() -> None:
    nf = parse()
    got = [(e.name, e.text, e.line) for e in nf.examples(None)]
    assert got == [
        ("greet", "xin chào", 7),
        ("greet", "chào [Tam Kỳ](power_unit)", 8),
        ("goodbye", "tạm biệt", 12),
        ("request_code", "PC\\d{2}", 18),
    ]
    ex = nf.examples()[1]
    assert ex.plain == "chào Tam Kỳ"
    assert ex.entities() == [{"start": 5, "end": 11, "value": "Tam Kỳ", "entity": "power_unit"}]
    assert all(b.editable for b in nf.blocks)


def test_unchanged_rewrite_is_byte_identical() -> None:
    nf = parse()
    wanted = {"greet": ["xin chào", "chào [Tam Kỳ](power_unit)"], "goodbye": ["tạm biệt"]}
    assert nludata.rewrite(nf, wanted) == TEXT


def test_rewrite_changes_only_the_block_lines() -> None:
    nf = parse()
    out = nludata.rewrite(nf, {"goodbye": ["tạm biệt", "hẹn gặp lại"]})
    assert out == TEXT.replace("    - tạm biệt\n", "    - tạm biệt\n    - hẹn gặp lại\n")
    # metadata and the regex block survive, and the result parses back
    back = nludata.parse_text(Path("x.yml"), out)
    assert back.ok and [e.text for e in back.examples() if e.name == "goodbye"] == ["tạm biệt", "hẹn gặp lại"]


def test_rewrite_adds_and_removes_blocks() -> None:
    nf = parse()
    out = nludata.rewrite(nf, {"greet": [], "thank": ["cảm ơn", "cám ơn em"]})
    back = nludata.parse_text(Path("x.yml"), out)
    assert back.ok
    names = [(b.kind, b.name) for b in back.blocks]
    assert names == [("intent", "goodbye"), ("regex", "request_code"), ("intent", "thank")]
    assert [e.text for e in back.examples() if e.name == "thank"] == ["cảm ơn", "cám ơn em"]
    assert "- intent: thank\n  examples: |\n    - cảm ơn\n" in out


def test_new_file_gets_a_header() -> None:
    nf = nludata.parse_text(Path("new.yml"), "")
    out = nludata.rewrite(nf, {"thank": ["cảm ơn"]})
    assert out.startswith('version: "3.1"\n')
    assert [e.text for e in nludata.parse_text(Path("new.yml"), out).examples()] == ["cảm ơn"]


def test_broken_yaml_is_a_problem_with_a_line() -> None:
    nf = nludata.parse_text(
        Path("x.yml"), TEXT.replace("  examples: |\n    - tạm biệt", "  examples: [\n    - tạm")
    )
    assert not nf.ok
    assert nf.problems[0].line is not None and nf.problems[0].line >= 11
    assert "YAML" in nf.problems[0].message


def test_line_without_dash_is_reported_not_read() -> None:
    nf = nludata.parse_text(
        Path("x.yml"), TEXT.replace("    - tạm biệt\n", "    - tạm biệt\n    hẹn gặp lại\n")
    )
    assert [e.text for e in nf.examples() if e.name == "goodbye"] == ["tạm biệt"]
    assert any(p.line == 13 and not p.fatal for p in nf.problems)
