"""Read Rasa 3 YAML NLU files keeping file and line of every example, and edit them in place.

Rasa's own reader loses line numbers, and a YAML round trip through a dumper would reformat the
files trainers edit by hand. So files are parsed with PyYAML's composer (which keeps positions) and
edited as text: only the lines of an `examples: |` block that actually changed are rewritten, so an
unchanged import leaves every byte of the file as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainer import entity_markup as entities_parser  # no Rasa: the desk imports it on Python 3.12+

BLOCK_KINDS = ("intent", "regex", "lookup", "synonym")
DEFAULT_HEADER = 'version: "3.1"\n\nnlu:\n'


@dataclass
class Example:
    """One line of an `examples:` block."""

    kind: str  # intent | regex | lookup | synonym
    name: str  # intent name, regex/lookup name, synonym value
    text: str  # as written, with entity annotations
    file: Path
    line: int  # 1-based

    @property
    def plain(self) -> str:
        """Text without annotation syntax (what the customer typed)."""
        return entities_parser.replace_entities(self.text) if self.kind == "intent" else self.text

    def entities(self) -> list[dict]:
        """Annotated entities: dicts with start, end, value, entity (offsets in `plain`)."""
        if self.kind != "intent":
            return []
        return entities_parser.find_entities_in_training_example(self.text)


@dataclass
class Block:
    """One item of the `nlu:` list."""

    kind: str
    name: str
    line: int  # 1-based line of the item
    item_start: int  # 0-based first line of the item
    item_end: int  # 0-based line after the item (its examples)
    content_start: int  # 0-based first content line of the literal block
    content_end: int  # 0-based line after the last non-blank content line
    indent: str  # indentation of the example lines
    editable: bool  # only `examples: |` literal blocks are rewritten
    examples: list[Example] = field(default_factory=list)


@dataclass
class ParseProblem:
    line: int | None
    message: str
    fatal: bool = True


@dataclass
class NluFile:
    path: Path
    text: str
    blocks: list[Block] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)
    seq_indent: str = ""  # indentation of the "- " of the nlu list items
    seq_end: int | None = None  # 0-based line after the nlu list (None: no nlu key)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines(keepends=True)

    @property
    def ok(self) -> bool:
        return not any(p.fatal for p in self.problems)

    def examples(self, kind: str | None = "intent") -> list[Example]:
        return [e for b in self.blocks if kind is None or b.kind == kind for e in b.examples]


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _scalar_map(node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode):
            out[str(k.value)] = (k, v)
    return out


def _rasa_lines(value: str) -> list[str | None]:
    """The examples Rasa reads from a literal block value (None for a line Rasa skips)."""
    out: list[str | None] = []
    for raw in value.splitlines():
        if not raw:
            continue
        out.append(raw[1:].strip(" \n\r") if raw.startswith("-") else None)
    return out


# libyaml's parser when PyYAML has it (both environments' wheels do): 1.1 of the 1.3 s that loading
# the project's NLU data took in Python's; the same nodes and marks (tests/trainer/test_nludata.py).
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_text(path: Path, text: str) -> NluFile:
    """Parse one NLU file's text. Problems are recorded, never raised."""
    nf = NluFile(path=path, text=text)
    lines = nf.lines
    try:
        root = yaml.compose(text, Loader=LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        nf.problems.append(ParseProblem(line, f"YAML hỏng: {exc.problem or exc}"))
        return nf
    except yaml.YAMLError as exc:
        nf.problems.append(ParseProblem(None, f"YAML hỏng: {exc}"))
        return nf
    if root is None:
        return nf
    if not isinstance(root, yaml.MappingNode):
        nf.problems.append(ParseProblem(1, "tệp phải là một bảng YAML có khóa 'version' và 'nlu'"))
        return nf
    top = _scalar_map(root)
    if "nlu" not in top:
        return nf  # rules/stories/responses only: no NLU here
    seq = top["nlu"][1]
    if isinstance(seq, yaml.ScalarNode) and seq.value in ("", None):
        nf.seq_end = seq.end_mark.line + 1
        return nf
    if not isinstance(seq, yaml.SequenceNode):
        nf.problems.append(
            ParseProblem(seq.start_mark.line + 1, "'nlu:' phải là một danh sách (mỗi mục bắt đầu bằng '- ')")
        )
        return nf
    items = [i for i in seq.value]
    for n, item in enumerate(items):
        start = item.start_mark.line
        if not nf.seq_indent:
            first = lines[start]
            nf.seq_indent = (
                first[: first.index("-")] if "-" in first else " " * max(item.start_mark.column - 2, 0)
            )
        if not isinstance(item, yaml.MappingNode):
            nf.problems.append(
                ParseProblem(start + 1, "mục của 'nlu:' phải có dạng '- intent: ...' và 'examples: |'")
            )
            continue
        keys = _scalar_map(item)
        kind = next((k for k in BLOCK_KINDS if k in keys), None)
        if kind is None:
            nf.problems.append(ParseProblem(start + 1, "mục không có khóa intent/regex/lookup/synonym"))
            continue
        name_node = keys[kind][1]
        name = str(name_node.value) if isinstance(name_node, yaml.ScalarNode) else ""
        if not name:
            nf.problems.append(ParseProblem(start + 1, f"'{kind}:' không có tên"))
            continue
        if "examples" not in keys:
            nf.problems.append(ParseProblem(start + 1, f"'{kind}: {name}' không có 'examples:'"))
            continue
        key_node, value = keys["examples"]
        item_end = items[n + 1].start_mark.line if n + 1 < len(items) else None
        block = _parse_block(nf, kind, name, start, key_node, value, lines)
        if block is None:
            continue
        block.item_end = item_end if item_end is not None else block.content_end
        nf.blocks.append(block)
    last_end = max((b.content_end for b in nf.blocks), default=seq.end_mark.line)
    nf.seq_end = max(last_end, 0)
    return nf


def _parse_block(
    nf: NluFile, kind: str, name: str, start: int, key_node: yaml.Node, value: yaml.Node, lines: list[str]
) -> Block | None:
    block = Block(kind, name, start + 1, start, start, start, start, "    ", False)
    if isinstance(value, yaml.SequenceNode):
        # `examples:` as a list of {text: ...} mappings: read-only here.
        for item in value.value:
            text = ""
            if isinstance(item, yaml.MappingNode):
                t = _scalar_map(item).get("text")
                text = str(t[1].value).strip() if t else ""
            elif isinstance(item, yaml.ScalarNode):
                text = str(item.value).strip()
            if text:
                block.examples.append(Example(kind, name, text, nf.path, item.start_mark.line + 1))
        block.content_start = value.start_mark.line
        block.content_end = value.end_mark.line + 1
        return block
    if not isinstance(value, yaml.ScalarNode) or not isinstance(value.value, str):
        nf.problems.append(
            ParseProblem(start + 1, f"'examples:' của '{name}' phải là một khối 'examples: |'")
        )
        return None
    key_col = key_node.start_mark.column
    first = value.start_mark.line + 1 if value.style == "|" else value.start_mark.line
    i = first
    if value.style == "|":
        while i < len(lines) and (not lines[i].strip() or _indent_of(lines[i]) > key_col):
            i += 1
        while i > first and not lines[i - 1].strip():
            i -= 1
    content = range(first, i)
    expected = _rasa_lines(value.value)
    found: list[tuple[int, str | None]] = []
    block_indent = None
    for ln in content:
        raw = lines[ln].rstrip("\r\n")
        if not raw.strip():
            continue
        if block_indent is None:
            block_indent = _indent_of(raw)
        body = raw[block_indent:] if _indent_of(raw) >= block_indent else raw.lstrip(" ")
        found.append((ln, body[1:].strip(" \n\r") if body.startswith("-") else None))
    block.content_start, block.content_end = first, i
    if value.style == "|" and [t for _, t in found] == expected:
        block.editable = True
        block.indent = " " * (block_indent if block_indent is not None else key_col + 2)
        for ln, line_text in found:
            if line_text is None:
                nf.problems.append(
                    ParseProblem(ln + 1, "dòng không bắt đầu bằng '- ': Rasa bỏ qua câu này", fatal=False)
                )
            elif line_text:
                block.examples.append(Example(kind, name, line_text, nf.path, ln + 1))
        return block
    # Folded/quoted/unusual indentation: keep Rasa's reading, lines approximate, not rewritten.
    for k, value_text in enumerate(expected):
        if value_text:
            block.examples.append(Example(kind, name, value_text, nf.path, min(first + k, len(lines)) + 1))
    nf.problems.append(
        ParseProblem(
            start + 1,
            f"'examples:' của '{name}' không phải khối '|' chuẩn: trình nhập không sửa được khối này",
            fatal=False,
        )
    )
    return block


def read_file(path: Path) -> NluFile:
    """Read and parse one file; undecodable bytes are a fatal problem."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        data = path.read_bytes()
        line = data[: exc.start].count(b"\n") + 1
        nf = NluFile(path=path, text="")
        nf.problems.append(ParseProblem(line, "tệp không phải UTF-8: hãy lưu lại với bảng mã UTF-8"))
        return nf
    return parse_text(path, text)


def nlu_files(directory: Path) -> list[Path]:
    """YAML files under a data directory, in a stable order."""
    if directory.is_file():
        return [directory]
    if not directory.exists():
        return []
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def read_dir(directory: Path) -> list[NluFile]:
    return [read_file(p) for p in nlu_files(directory)]


# ---------------------------------------------------------------------------------------- writing


def _render(indent: str, texts: list[str]) -> list[str]:
    return [f"{indent}- {t}\n" for t in texts]


def rewrite(nf: NluFile, wanted: dict[str, list[str]]) -> str:
    """Text of `nf` with the intent examples replaced by `wanted` (intent → texts, in order).

    Intents of `nf` missing from `wanted` keep their examples; an intent mapped to [] loses its
    block(s); intents not yet in the file get a new block at the end of the `nlu:` list. When an
    intent has several blocks in the file, the first receives the examples and the others are removed.
    """
    if not nf.ok:
        raise ValueError(f"{nf.path}: cannot rewrite a file with problems")
    lines = nf.lines
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    edits: list[tuple[int, int, list[str]]] = []  # (start, end, new lines), 0-based, end exclusive
    seen: set[str] = set()
    for block in nf.blocks:
        if block.kind != "intent" or block.name not in wanted:
            continue
        texts = wanted[block.name]
        current = [e.text for e in block.examples]
        if block.name in seen or not texts:
            edits.append((block.item_start, block.item_end, []))
            continue
        seen.add(block.name)
        if texts == current:
            continue
        if not block.editable:
            raise ValueError(f"{nf.path}:{block.line}: block '{block.name}' is not an 'examples: |' block")
        edits.append((block.content_start, block.content_end, _render(block.indent, texts)))
    new_intents = [name for name, texts in wanted.items() if texts and name not in seen]
    if new_intents:
        if nf.seq_end is None:
            # No `nlu:` key yet (empty or brand-new file).
            header = DEFAULT_HEADER if not "".join(lines).strip() else "\nnlu:\n"
            if not "".join(lines).strip():
                lines = []
            lines.append(header)
            at = len(lines)
        else:
            at = nf.seq_end
        key_indent, ex_indent = _new_block_indents(nf)
        added: list[str] = []
        for k, name in enumerate(new_intents):
            if k > 0 or nf.blocks:
                added.append("\n")
            added.append(f"{nf.seq_indent}- intent: {name}\n")
            added.append(f"{key_indent}examples: |\n")
            added += _render(ex_indent, wanted[name])
        edits.append((at, at, added))
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        lines[start:end] = new
    return "".join(lines)


def _new_block_indents(nf: NluFile) -> tuple[str, str]:
    """Indentation of `examples:` and of example lines for a new block, copied from the file."""
    key_indent = nf.seq_indent + "  "
    for b in nf.blocks:
        if b.editable:
            return key_indent, b.indent
    return key_indent, key_indent + "  "
