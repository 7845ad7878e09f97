"""The trainer's own checks of the NLU data, each finding with file and line.

`rasa data validate` checks the domain, stories and rules against each other, but it cannot say on which
line an example is wrong, and it does not know our conventions (request-code format, NFC, one intent per
sentence). Each finding has a stable code; docs/trainer-guide.vi.md says what to do for each code.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from bot.components.normalizer import fold_text
from common.request_code import REQUEST_CODE_SAMPLE, normalize_request_code
from trainer import nludata, textnorm
from trainer.project import Project

REQUEST_CODE_ENTITY = "request_code"
MAX_EXAMPLE_CHARS = 500

Adder = Callable[..., None]


@dataclass(frozen=True)
class Issue:
    level: str  # "error" | "warning"
    code: str
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        label = "LỖI" if self.level == "error" else "cảnh báo"
        return f"{where}: {label} [{self.code}] {self.message}"

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity that survives line shifts (used to tell new errors from old ones)."""
        return (self.code, self.file, self.message)


def run_all(project: Project) -> list[Issue]:
    s = project.settings
    issues: list[Issue] = []

    def add(
        level: str, code: str, ex_or_file: nludata.Example | str, message: str, line: int | None = None
    ) -> None:
        if isinstance(ex_or_file, nludata.Example):
            issues.append(Issue(level, code, s.rel(ex_or_file.file), ex_or_file.line, message))
        else:
            issues.append(Issue(level, code, ex_or_file, line, message))

    if project.domain.problem:
        add("error", "E-DOMAIN", s.domain, project.domain.problem)
    for nf in project.train + project.test:
        for p in nf.problems:
            add(
                "error" if p.fatal else "warning",
                "E-YAML" if p.fatal else "W-FORMAT",
                s.rel(nf.path),
                p.message,
                p.line,
            )
        _check_text_lines(nf, s.rel(nf.path), add)

    train = project.train_examples()
    test = [e for f in project.test for e in f.examples("intent")]
    _check_names(project, train + test, add)
    _check_entities(project, train + test, add)
    _check_duplicates(train, add)
    _check_counts(project, train, add)
    _check_leakage(train, test, add)
    _check_regexes(project, add)
    return sorted(issues, key=lambda i: (i.file, i.line or 0, i.code))


def _check_text_lines(nf: nludata.NluFile, rel: str, add: Adder) -> None:
    """Every line of the file: NFC, no invisible characters (checked on raw lines, comments included)."""
    for n, line in enumerate(nf.text.splitlines(), start=1):
        if not textnorm.is_nfc(line):
            add(
                "error",
                "E-NFC",
                rel,
                f"chữ không ở dạng Unicode NFC (dấu gõ tách rời): '{line.strip()}' → "
                f"'{textnorm.nfc(line).strip()}' (make import-nlu hoặc gõ lại sẽ sửa)",
                n,
            )
        for ch, what in textnorm.SUSPICIOUS_CHARS.items():
            if ch in line:
                add("warning", "W-CHAR", rel, f"có {what}: thay bằng dấu cách thường", n)


def _check_names(project: Project, examples: list[nludata.Example], add: Adder) -> None:
    dom = project.domain
    if not dom.intents:
        return
    subs = {e.name for e in examples if "/" in e.name}
    valid = dom.valid_labels(subs)
    reported: set[tuple[str, str]] = set()  # one message per intent and file, not one per example
    for e in examples:
        if (str(e.file), e.name) in reported:
            pass
        elif not dom.knows_intent(e.name):
            reported.add((str(e.file), e.name))
            hint = _suggest(e.name, valid)
            add("error", "E-INTENT", e, f"ý định '{e.name}' không có trong domain.yml{hint}")
        elif "/" in e.name and dom.responses and f"utter_{e.name}" not in dom.responses:
            reported.add((str(e.file), e.name))
            add(
                "error",
                "E-FAQ-RESPONSE",
                e,
                f"thiếu câu trả lời 'utter_{e.name}' trong domain.yml (responses)",
            )
        if len(e.plain) > MAX_EXAMPLE_CHARS:
            add("error", "E-LENGTH", e, f"câu dài {len(e.plain)} ký tự (tối đa {MAX_EXAMPLE_CHARS})")


def _suggest(name: str, valid: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, valid, n=2, cutoff=0.5)
    return f" (có phải: {', '.join(close)}?)" if close else ""


def _check_entities(project: Project, examples: list[nludata.Example], add: Adder) -> None:
    labels_by_text: dict[str, dict[str, nludata.Example]] = defaultdict(dict)
    for e in examples:
        try:
            ents = e.entities()
        except Exception as exc:  # rasa's parser raises on malformed {...} annotations
            add("error", "E-ENTITY-SYNTAX", e, f"chú thích thực thể viết sai: {exc}")
            continue
        if ("[" in e.text and "](" in e.text or "]{" in e.text) and not ents:
            add("error", "E-ENTITY-SYNTAX", e, "có dấu [..](..) nhưng không đọc được thực thể nào")
        for ent in ents:
            name = ent["entity"]
            if project.domain.entities and name not in project.domain.entities:
                hint = _suggest(name, sorted(project.domain.entities))
                add("error", "E-ENTITY", e, f"thực thể '{name}' không có trong domain.yml{hint}")
            surface = e.plain[ent["start"] : ent["end"]]
            labels_by_text[textnorm.compare_key(surface)].setdefault(name, e)
            if name == REQUEST_CODE_ENTITY:
                value = str(ent.get("value", surface))
                if normalize_request_code(value) is None:  # what the bot does with a typed code
                    add(
                        "error",
                        "E-CODE",
                        e,
                        f"mã yêu cầu '{value}' sai định dạng: cần PC + 2 "
                        f"số + 2 chữ + 7 số, ví dụ {REQUEST_CODE_SAMPLE}",
                    )
    for _surface, by_label in labels_by_text.items():
        if len(by_label) > 1:
            where = ", ".join(f"'{lab}' ({ex.file.name}:{ex.line})" for lab, ex in sorted(by_label.items()))
            first = next(iter(by_label.values()))
            add("error", "E-ENTITY-CONFLICT", first, f"cùng một chữ được gán nhiều loại thực thể: {where}")


def _check_duplicates(train: list[nludata.Example], add: Adder) -> None:
    by_key: dict[str, list[nludata.Example]] = defaultdict(list)
    by_fold: dict[str, list[nludata.Example]] = defaultdict(list)
    for e in train:
        by_key[textnorm.compare_key(e.plain)].append(e)
        by_fold[textnorm.folded_key(e.plain)].append(e)
    conflicting_keys: set[str] = set()
    for key, group in by_key.items():
        first = group[0]
        for e in group[1:]:
            if e.name == first.name:
                add(
                    "warning",
                    "W-DUPLICATE",
                    e,
                    f"'{e.plain}' trùng với '{first.plain}' ở {first.file.name}:{first.line} (cùng ý định; "
                    f"không kể hoa/thường, dấu câu, kiểu đặt dấu thanh): xóa bớt một câu",
                )
            else:
                conflicting_keys.add(key)
                add(
                    "error",
                    "E-CONFLICT",
                    e,
                    f"câu '{e.plain}' thuộc '{e.name}' nhưng cũng có trong '{first.name}' "
                    f"({first.file.name}:{first.line}): một câu chỉ được thuộc một ý định",
                )
    for _fkey, group in by_fold.items():
        names = {e.name for e in group}
        if len(names) < 2:
            continue
        if {textnorm.compare_key(e.plain) for e in group} <= conflicting_keys:
            continue  # already reported as a real conflict
        first = group[0]
        for e in group[1:]:
            if e.name != first.name:
                add(
                    "warning",
                    "W-FOLD-CONFLICT",
                    e,
                    f"khi bỏ dấu, '{e.plain}' ({e.name}) giống '{first.plain}' ({first.name}, "
                    f"{first.file.name}:{first.line}): khách gõ không dấu sẽ dễ bị hiểu nhầm",
                )


def _check_counts(project: Project, train: list[nludata.Example], add: Adder) -> None:
    s = project.settings
    count: dict[str, list[nludata.Example]] = defaultdict(list)
    for e in train:
        count[e.name].append(e)
    for name, group in sorted(count.items()):
        if len(group) < s.min_examples_per_intent:
            add(
                "error",
                "E-FEW",
                group[0],
                f"ý định '{name}' chỉ có {len(group)} câu ví dụ (cần ít nhất {s.min_examples_per_intent}, "
                f"đặt trong nlu_thresholds.yml)",
            )
    dom = project.domain
    retrieval = dom.retrieval_intents
    for name in sorted(dom.intents - set(count) - retrieval):
        if not any(n.startswith(f"{name}/") for n in count):
            add(
                "warning",
                "W-NO-EXAMPLES",
                s.domain,
                f"ý định '{name}' có trong domain.yml nhưng chưa có câu ví dụ nào",
            )
    for base in sorted(retrieval):
        for r in sorted(dom.responses):
            sub = r[len("utter_") :]
            if r.startswith(f"utter_{base}/") and sub not in count:
                add(
                    "warning",
                    "W-NO-EXAMPLES",
                    s.domain,
                    f"câu trả lời '{r}' chưa có câu hỏi ví dụ '{sub}' nào",
                )


@functools.lru_cache(maxsize=textnorm.KEY_CACHE)
def leak_key(text: str) -> str:
    return textnorm.compare_key(fold_text(text))


def _check_leakage(train: list[nludata.Example], test: list[nludata.Example], add: Adder) -> None:
    """The held-out set must stay unseen, or the report measures memory, not understanding."""
    # Compared as the model sees them (teencode expanded, diacritics folded, no punctuation): "em ơi"
    # and "e oi" are one example to the model.
    seen = {leak_key(e.plain): e for e in train}
    for e in test:
        hit = seen.get(leak_key(e.plain))
        if hit:
            # The report-only set is never shown, not even here (the training line would show it):
            # only where to remove the training line.
            hidden = e.file.stem == "report_only"
            what = "câu học này" if hidden else f"câu học '{hit.plain}'"
            where = f"{e.file.name}:?" if hidden else f"'{e.plain}' ({e.file.name}:{e.line})"
            add(
                "error",
                "E-LEAK",
                hit,
                f"{what} trùng câu kiểm tra {where}: xóa câu này khỏi dữ liệu học, "
                "bộ kiểm tra phải là câu mô hình chưa từng thấy",
            )


def _check_regexes(project: Project, add: Adder) -> None:
    for nf in project.train:
        for e in nf.examples("regex"):
            try:
                pattern = re.compile(e.text, re.IGNORECASE)
            except re.error as exc:
                add("error", "E-REGEX", e, f"biểu thức '{e.name}' không hợp lệ: {exc}")
                continue
            if e.name == REQUEST_CODE_ENTITY and not pattern.search(REQUEST_CODE_SAMPLE):
                add("warning", "W-REGEX", e, f"biểu thức '{e.name}' không khớp mã mẫu {REQUEST_CODE_SAMPLE}")
