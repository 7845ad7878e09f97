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


def test_retrieval_intents_are_those_with_utter_base_slash_responses() -> None:
    from trainer.project import Domain

    dom = Domain(
        intents={"faq", "chitchat", "greet", "faqs", "odd/name"},
        responses={
            "utter_faq/hotline",
            "utter_faq/fee",
            "utter_greet",
            "utter_chitchat/ask_bot",
            "utter_odd/name/x",
        },
    )
    slow = {i for i in dom.intents if any(r.startswith(f"utter_{i}/") for r in dom.responses)}
    assert dom.retrieval_intents == slow == {"faq", "chitchat", "odd/name"}
    assert dom.knows_intent("faq/hotline") and dom.knows_intent("greet")
    assert not dom.knows_intent("greet/hello")  # greet has no utter_greet/... responses
    assert not dom.knows_intent("faqs/x") and not dom.knows_intent("nope")
    assert Domain(intents={"faq"}).knows_intent("faq/anything")  # no responses known: not checked


def test_libyaml_and_python_parsers_read_every_nlu_file_alike(monkeypatch) -> None:
    """nludata parses with libyaml's loader when PyYAML has it: every NLU file of the project (and
    broken YAML) must give the same blocks, examples, line numbers and problem lines as Python's."""
    import yaml

    assert nludata.LOADER is yaml.CSafeLoader  # the wheels of both environments have libyaml
    root = Path(__file__).resolve().parents[2]
    files = sorted([*(root / "bot" / "data").rglob("*.yml"), *(root / "tests" / "nlu").glob("*.yml")])
    texts = [(f, f.read_text(encoding="utf-8")) for f in files]
    texts += [
        (Path("broken.yml"), 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - chào\n  - x: [\n'),
        (Path("tabs.yml"), 'version: "3.1"\nnlu:\n\t- intent: greet\n'),
        (Path("empty.yml"), 'version: "3.1"\nnlu:\n'),
    ]
    compared = 0
    for path, text in texts:
        fast = nludata.parse_text(path, text)
        monkeypatch.setattr(nludata, "LOADER", yaml.SafeLoader)
        slow = nludata.parse_text(path, text)
        monkeypatch.undo()
        assert (fast.blocks, fast.seq_indent, fast.seq_end) == (slow.blocks, slow.seq_indent, slow.seq_end), (
            path
        )
        assert [(p.line, p.fatal) for p in fast.problems] == [(p.line, p.fatal) for p in slow.problems], path
        compared += len(fast.examples(None))
    assert len(files) > 20 and compared > 5000, (len(files), compared)
