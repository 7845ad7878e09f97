"""Adding, editing and deleting one NLU example, checked with the same checks as `make validate`.

The change is planned on the project as it is on disk: the topic file is rewritten as text by
trainer/nludata.py (only the lines of that intent's `examples: |` block change, comments and layout
stay), read back, and the whole data set with the change is checked by trainer/checks.py in memory.
Findings the data already had before the change are not the trainer's: only new ones are shown.
A duplicate of an example of the same intent is refused here (the CSV import silently skips it).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from agent_desk.training.texts import TEXTS
from trainer import checks, nludata, textnorm
from trainer import settings as trainer_settings
from trainer.project import Project
from trainer.settings import Settings as TrainerSettings

MAX_TEXT = checks.MAX_EXAMPLE_CHARS
_CONTROL = {chr(c) for c in range(32)} | {"\x7f"}


class EditRefused(Exception):
    """The change cannot be made; the message (Vietnamese) says why."""


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning
    code: str
    message: str


@dataclass(frozen=True)
class Plan:
    path: Path
    new_text: str
    intent: str
    action: str  # add | edit | delete
    example: str  # the annotated example added / the new text / the deleted one
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]


def load_settings(project_dir: Path) -> TrainerSettings:
    try:
        return trainer_settings.load(project_dir)
    except trainer_settings.SettingsError as exc:
        raise EditRefused(TEXTS.get("thresholds_unreadable", error=exc)) from None


def load(project_dir: Path) -> Project:
    return Project.load(load_settings(project_dir))


def labels(project: Project) -> list[str]:
    """Intents a trainer may pick (retrieval groups as their sub-intents): those that already have
    examples. An intent without any is reached by buttons only, by design (`csat`: a typed text is
    never a satisfaction score; `share_contact`: sent by the connectors); a new intent needs a
    developer (domain.yml, rules)."""
    named = {e.name for e in project.train_examples()}
    subs = {n for n in named if "/" in n}
    return [n for n in project.domain.valid_labels(subs) if n in named]


def clean_text(raw: str) -> str:
    """The typed sentence as stored: NFC, single spaces. Refused: empty, too long, control characters,
    line breaks, and the brackets of the annotation syntax (entities are marked with the span form)."""
    if len(raw) > MAX_TEXT * 2:
        raise EditRefused(TEXTS.get("text_far_too_long", limit=MAX_TEXT))
    if "\n" in raw.strip() or "\r" in raw.strip():
        raise EditRefused(TEXTS.get("text_line_break"))
    text = textnorm.clean_example(raw)
    if not text:
        raise EditRefused(TEXTS.get("text_empty"))
    if len(text) > MAX_TEXT:
        raise EditRefused(TEXTS.get("text_too_long", length=len(text), limit=MAX_TEXT))
    if any(c in _CONTROL or unicodedata.category(c) == "Cf" for c in text):
        raise EditRefused(TEXTS.get("text_invisible_chars"))
    if any(c in text for c in "[](){}"):
        raise EditRefused(TEXTS.get("text_brackets"))
    return text


def annotate(text: str, spans: list[tuple[int, int, str]], entities: set[str]) -> str:
    """`text` with `[surface](entity)` for each (start, end, entity); spans in characters of `text`."""
    ordered = sorted(spans)
    for k, (start, end, entity) in enumerate(ordered):
        if entity not in entities:
            raise EditRefused(TEXTS.get("entity_unknown", entity=entity))
        if not 0 <= start < end <= len(text):
            raise EditRefused(TEXTS.get("entity_outside", start=start, end=end, length=len(text)))
        if k and start < ordered[k - 1][1]:
            raise EditRefused(TEXTS.get("entity_overlap"))
        if text[start:end] != text[start:end].strip():
            raise EditRefused(TEXTS.get("entity_spaces"))
    for start, end, entity in reversed(ordered):
        text = f"{text[:start]}[{text[start:end]}]({entity}){text[end:]}"
    return text


def _with_file(project: Project, path: Path, new_text: str) -> Project:
    files = [f for f in project.train if f.path.resolve() != path.resolve()]
    files.append(nludata.parse_text(path, new_text))
    files.sort(key=lambda f: str(f.path))
    return dataclasses.replace(project, train=files)


def _file(project: Project, path: Path) -> nludata.NluFile:
    for f in project.train:
        if f.path.resolve() == path.resolve():
            if not f.ok:
                raise EditRefused(TEXTS.get("file_broken", file=project.settings.rel(path)))
            return f
    return nludata.parse_text(path, "")


def _rewrite(project: Project, nf: nludata.NluFile, intent: str, texts: list[str]) -> str:
    try:
        text = nludata.rewrite(nf, {intent: texts})
    except ValueError:
        raise EditRefused(
            TEXTS.get("block_not_rewritable", intent=intent, file=project.settings.rel(nf.path))
        ) from None
    back = nludata.parse_text(nf.path, text)
    if not back.ok or [e.text for e in back.examples("intent") if e.name == intent] != texts:
        raise EditRefused(TEXTS.get("write_mismatch"))
    return text


_BEFORE_CACHE: dict[tuple[object, ...], frozenset[tuple[str, str, str]]] = {}


def _signature(project: Project) -> tuple[object, ...]:
    """What the data's findings depend on: every file read, with its size and modification time."""
    s = project.settings
    paths = [f.path for f in project.train + project.test]
    paths += [s.path(s.domain), s.root / trainer_settings.THRESHOLDS_FILE]
    out: list[object] = [str(s.root)]
    for path in paths:
        try:
            st = path.stat()
            out.append((str(path), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(path), None))
    return tuple(out)


def _issues_before(project: Project) -> frozenset[tuple[str, str, str]]:
    """The findings the data has now (cached until a file changes: each check would redo them)."""
    key = _signature(project)
    cached = _BEFORE_CACHE.get(key)
    if cached is None:
        cached = frozenset(i.key for i in checks.run_all(project))
        _BEFORE_CACHE.clear()
        _BEFORE_CACHE[key] = cached
    return cached


LEAK_MESSAGE = TEXTS.get("leak")


def _findings(project: Project, after: Project, example: str | None, intent: str) -> tuple[Finding, ...]:
    before = _issues_before(project)
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for issue in checks.run_all(after):
        if issue.key in before or (issue.code, issue.message) in seen:
            continue
        seen.add((issue.code, issue.message))
        level = issue.level
        if issue.code == "W-DUPLICATE":  # the same sentence twice in one intent: nothing to add
            level = "error"
        message = issue.message
        if issue.code == "E-LEAK":
            # Which test set and which test sentence are not said to trainers: naming them would let
            # anyone find the hidden sets' lines by trying sentences one by one.
            message = LEAK_MESSAGE
        out.append(Finding(level, issue.code, message))
    if example is not None:
        plain = nludata.entities_parser.replace_entities(example)
        if "*" in plain:
            out.append(Finding("warning", "W-MASKED", TEXTS.get("masked")))
    return tuple(sorted(out, key=lambda f: (f.level != "error", f.code)))


def _same_sentence(
    project: Project, annotated: str, intent: str, skip: nludata.Example | None = None
) -> list[Finding]:
    """The example already there (same intent: a duplicate) or in another intent (a conflict)."""
    key = textnorm.compare_key(nludata.entities_parser.replace_entities(annotated))
    rel = project.settings.rel
    for e in project.train_examples():
        if skip is not None and e.file == skip.file and e.line == skip.line:
            continue
        if textnorm.compare_key(e.plain) != key:
            continue
        if e.name == intent:
            return [
                Finding(
                    "error",
                    "E-DUPLICATE",
                    TEXTS.get("duplicate", intent=intent, plain=e.plain, file=rel(e.file), line=e.line),
                )
            ]
        return [
            Finding(
                "error",
                "E-CONFLICT",
                TEXTS.get("conflict", intent=e.name, plain=e.plain, file=rel(e.file), line=e.line),
            )
        ]
    return []


def _merge(first: list[Finding], rest: tuple[Finding, ...]) -> tuple[Finding, ...]:
    codes = {f.code for f in first}
    # The direct findings say the same as the data-wide check, in clearer words.
    drop = {"W-DUPLICATE", "E-CONFLICT"} if codes & {"E-DUPLICATE", "E-CONFLICT"} else set()
    out = first + [f for f in rest if f.code not in drop]
    return tuple(sorted(out, key=lambda f: (f.level != "error", f.code)))


def _nfc_finding(raw: str) -> list[Finding]:
    if textnorm.is_nfc(raw):
        return []
    return [Finding("warning", "W-NFC", TEXTS.get("not_nfc"))]


def _check_intent(project: Project, intent: str) -> None:
    if intent not in labels(project):
        raise EditRefused(TEXTS.get("intent_not_allowed", intent=intent))


def plan_add(project: Project, intent: str, annotated: str, raw: str = "") -> Plan:
    _check_intent(project, intent)
    path = project.topic_map().get(intent) or project.settings.path(project.settings.nlu_dir) / "general.yml"
    nf = _file(project, path)
    texts = [e.text for e in nf.examples("intent") if e.name == intent] + [annotated]
    new_text = _rewrite(project, nf, intent, texts)
    after = _with_file(project, path, new_text)
    direct = _nfc_finding(raw) + _same_sentence(project, annotated, intent)
    findings = _merge(direct, _findings(project, after, annotated, intent))
    return Plan(path, new_text, intent, "add", annotated, findings)


def find_example(project: Project, file_rel: str, line: int, old_text: str) -> nludata.Example:
    for e in project.train_examples():
        if project.settings.rel(e.file) == file_rel and e.line == line and e.text == old_text:
            return e
    raise EditRefused(TEXTS.get("example_gone"))


def plan_edit(project: Project, example: nludata.Example, annotated: str, raw: str = "") -> Plan:
    nf = _file(project, example.file)
    texts = []
    for e in nf.examples("intent"):
        if e.name == example.name:
            texts.append(annotated if e.line == example.line else e.text)
    new_text = _rewrite(project, nf, example.name, texts)
    after = _with_file(project, example.file, new_text)
    direct = _nfc_finding(raw) + _same_sentence(project, annotated, example.name, skip=example)
    findings = _merge(direct, _findings(project, after, annotated, example.name))
    return Plan(example.file, new_text, example.name, "edit", annotated, findings)


def plan_delete(project: Project, example: nludata.Example) -> Plan:
    minimum = project.settings.min_examples_per_intent
    count = sum(1 for e in project.train_examples() if e.name == example.name)
    if count <= minimum:
        raise EditRefused(TEXTS.get("too_few_examples", intent=example.name, count=count, minimum=minimum))
    nf = _file(project, example.file)
    texts = [e.text for e in nf.examples("intent") if e.name == example.name and e.line != example.line]
    new_text = _rewrite(project, nf, example.name, texts)
    after = _with_file(project, example.file, new_text)
    return Plan(
        example.file, new_text, example.name, "delete", example.text, _findings(project, after, None, "")
    )


def examples_of(project: Project, intent: str) -> list[nludata.Example]:
    return [e for e in project.train_examples() if e.name == intent]


def search(project: Project, intent: str, query: str, limit: int) -> list[nludata.Example]:
    """Examples of `intent` (all when empty) whose text contains `query`, diacritics and case ignored."""
    from common.folding import fold

    q = fold(query)
    out = []
    for e in project.train_examples():
        if intent and e.name != intent:
            continue
        if q and q not in fold(e.plain):
            continue
        out.append(e)
        if len(out) >= limit:
            break
    return out


def commit_message(intent: str, action: str, username: str) -> str:
    key = {"add": "commit_add", "edit": "commit_edit", "delete": "commit_delete"}[action]
    return TEXTS.get(key, intent=intent, username=username)
