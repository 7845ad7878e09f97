"""CSV export of all NLU examples, and import of CSV files back into the topic YAML files.

Two CSV shapes are accepted by the import:

* the **review** shape written by `make review` (columns text, label, entities, ...): each row with a
  label is a new example added to the topic file of that intent; rows without a label are skipped;
* the **export** shape written by `make export-nlu` (columns intent, text, file): the CSV is the new
  content of every intent it mentions, so edited rows change, deleted rows disappear and rows whose
  intent changed move. Intents absent from the CSV are not touched.

Nothing is written unless the whole import is valid: the new files are built in memory, read back,
checked together with the rest of the data in a staging copy, and only then renamed into place.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from common.request_code import REQUEST_CODE_SAMPLE, normalize_request_code
from trainer import checks, csvio, nludata, textnorm, validate
from trainer.project import Project
from trainer.settings import Settings

EXPORT_HEADER = ["intent", "text", "file"]
REVIEW_HEADER = [
    "text",
    "predicted_intent",
    "confidence",
    "conversation",
    "timestamp",
    "label",
    "entities",
    "reason",
]
_CONTROL = {chr(c) for c in range(32)} - {"\t"}


class ImportFailed(Exception):
    """The import was refused; `problems` says why, row by row. Nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ImportSummary:
    added: int = 0
    removed: int = 0
    skipped_duplicates: int = 0
    skipped_unlabelled: int = 0
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ export


def export(settings: Settings, out: Path) -> int:
    """Write every intent example as one row: intent, annotated text, source file. Returns the row count."""
    project = Project.load(settings)
    broken = [f for f in project.train if not f.ok]
    if broken:
        raise ImportFailed(
            [f"{settings.rel(f.path)}:{p.line}: {p.message}" for f in broken for p in f.problems if p.fatal]
        )
    rows = [[e.name, e.text, settings.rel(e.file)] for e in project.train_examples()]
    return csvio.write_csv(out, EXPORT_HEADER, rows)


# ------------------------------------------------------------------------------------------ import


def _annotate(text: str, entities_cell: str, rownum: int, problems: list[str]) -> str:
    """Add `[surface](entity)` for each `entity=value` of the entities cell (value found in the text)."""
    pairs = [p.strip() for p in entities_cell.replace("\n", ";").split(";") if p.strip()]
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), textnorm.clean_example(value)
        if not sep or not name or not value:
            problems.append(
                f"dòng {rownum}: cột entities phải có dạng 'loại=giá trị; loại=giá trị', đang là '{pair}'"
            )
            continue
        plain = nludata.entities_parser.replace_entities(text) if "](" in text or "]{" in text else text
        if plain != text:
            problems.append(f"dòng {rownum}: câu đã có chú thích [..](..): không dùng thêm cột entities")
            continue
        at = text.casefold().find(value.casefold())
        if at < 0:
            problems.append(f"dòng {rownum}: không thấy '{value}' (thực thể {name}) trong câu '{text}'")
            continue
        text = f"{text[:at]}[{text[at : at + len(value)]}]({name}){text[at + len(value) :]}"
    return text


def _clean_row_text(raw: str, rownum: int, problems: list[str]) -> str | None:
    if "\n" in raw.strip() or "\r" in raw.strip():
        problems.append(f"dòng {rownum}: câu có xuống dòng: mỗi ô chỉ một câu")
        return None
    text = textnorm.clean_example(raw)
    if not text:
        problems.append(f"dòng {rownum}: cột text trống")
        return None
    if any(c in _CONTROL for c in text):
        problems.append(f"dòng {rownum}: câu có ký tự điều khiển không in được")
        return None
    if len(text) > checks.MAX_EXAMPLE_CHARS:
        problems.append(f"dòng {rownum}: câu dài {len(text)} ký tự (tối đa {checks.MAX_EXAMPLE_CHARS})")
        return None
    return text


def _check_label(project: Project, label: str, rownum: int, problems: list[str], valid: list[str]) -> bool:
    if project.domain.knows_intent(label) and (
        "/" not in label or not project.domain.responses or f"utter_{label}" in project.domain.responses
    ):
        if label in project.domain.retrieval_intents:
            problems.append(
                f"dòng {rownum}: '{label}' là nhóm câu hỏi thường gặp: ghi rõ câu hỏi, ví dụ {label}/hotline"
            )
            return False
        return True
    hint = checks._suggest(label, valid)
    problems.append(
        f"dòng {rownum}: ý định '{label}' không có trong domain.yml{hint}. "
        f"Các ý định hợp lệ: {', '.join(valid)}"
    )
    return False


def _check_entities(project: Project, text: str, rownum: int, problems: list[str]) -> None:
    try:
        ents = nludata.entities_parser.find_entities_in_training_example(text)
    except Exception as exc:  # malformed {...} annotation
        problems.append(f"dòng {rownum}: chú thích thực thể viết sai: {exc}")
        return
    for ent in ents:
        if project.domain.entities and ent["entity"] not in project.domain.entities:
            problems.append(f"dòng {rownum}: thực thể '{ent['entity']}' không có trong domain.yml")
        if ent["entity"] == checks.REQUEST_CODE_ENTITY and normalize_request_code(str(ent["value"])) is None:
            problems.append(
                f"dòng {rownum}: mã yêu cầu '{ent['value']}' sai định dạng (ví dụ {REQUEST_CODE_SAMPLE})"
            )


def _resolve_file(settings: Settings, cell: str, rownum: int, problems: list[str]) -> Path | None:
    nlu_dir = settings.path(settings.nlu_dir).resolve()
    p = settings.path(cell.strip()).resolve()
    if p.suffix not in (".yml", ".yaml") or not p.is_relative_to(nlu_dir):
        problems.append(f"dòng {rownum}: tệp '{cell}' phải là một tệp .yml trong {settings.nlu_dir}/")
        return None
    return p


def plan_import(settings: Settings, csv_path: Path) -> tuple[dict[Path, str], ImportSummary, Project]:
    """New text of every file the CSV changes. Raises ImportFailed with row-numbered messages."""
    header, rows = _read(csv_path)
    project = Project.load(settings)
    broken = [
        f"{settings.rel(f.path)}:{p.line}: {p.message}" for f in project.train for p in f.problems if p.fatal
    ]
    if broken:
        raise ImportFailed([f"dữ liệu NLU hiện có bị lỗi, sửa trước khi nhập: {b}" for b in broken])
    if project.domain.problem or not project.domain.intents:
        raise ImportFailed(
            [f"không đọc được danh sách ý định trong domain: {project.domain.problem or 'trống'}"]
        )
    if "label" in header:
        return _plan_review(project, rows, csv_path)
    if "intent" in header:
        return _plan_export(project, rows, csv_path)
    raise ImportFailed(
        [
            f"{csv_path}: thiếu cột. Tệp từ 'make review' cần "
            "các cột text và label; tệp từ 'make export-nlu' "
            f"cần intent, text, file. Tệp này có: {', '.join(h for h in header if h) or '(không có)'}"
        ]
    )


def _read(csv_path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        header, rows = csvio.read_csv(csv_path)
    except csvio.CsvProblem as exc:
        raise ImportFailed([str(exc)]) from None
    if "text" not in header:
        raise ImportFailed([f"{csv_path}: thiếu cột 'text'. Tệp có các cột: {', '.join(header)}"])
    return header, rows


def _topic(s: Settings, topics: dict[str, Path], label: str) -> Path:
    """Topic file of a label; a label the map does not know yet gets a file named after its intent."""
    return topics.get(label) or s.path(s.nlu_dir) / f"{label.split('/')[0]}.yml"


def _existing(project: Project) -> dict[str, nludata.Example]:
    return {textnorm.compare_key(e.plain): e for e in project.train_examples()}


def _plan_review(
    project: Project, rows: list[tuple[int, dict[str, str]]], csv_path: Path
) -> tuple[dict[Path, str], ImportSummary, Project]:
    s = project.settings
    summary = ImportSummary()
    problems: list[str] = []
    valid = project.domain.valid_labels({e.name for e in project.train_examples() if "/" in e.name})
    topics = project.topic_map()
    existing = _existing(project)
    in_csv: dict[str, tuple[str, int]] = {}
    additions: dict[Path, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for rownum, row in rows:
        label = row.get("label", "").strip()
        if not label:
            summary.skipped_unlabelled += 1
            continue
        text = _clean_row_text(row.get("text", ""), rownum, problems)
        if text is None or not _check_label(project, label, rownum, problems, valid):
            continue
        if row.get("entities", "").strip():
            text = _annotate(text, row["entities"], rownum, problems)
        _check_entities(project, text, rownum, problems)
        key = textnorm.compare_key(nludata.entities_parser.replace_entities(text))
        if key in existing:
            ex = existing[key]
            if ex.name == label:
                summary.skipped_duplicates += 1
            else:
                problems.append(
                    f"dòng {rownum}: câu '{ex.plain}' đã có trong ý định '{ex.name}' "
                    f"({s.rel(ex.file)}:{ex.line}); không thể thêm vào '{label}'"
                )
            continue
        if key in in_csv:
            prev_label, prev_row = in_csv[key]
            if prev_label == label:
                summary.skipped_duplicates += 1
            else:
                problems.append(
                    f"dòng {rownum}: cùng câu với dòng {prev_row} "
                    f"nhưng khác nhãn ('{prev_label}' và '{label}')"
                )
            continue
        in_csv[key] = (label, rownum)
        additions[_topic(s, topics, label)][label].append(text)
        summary.added += 1
    if problems:
        raise ImportFailed(problems)
    files = {f.path.resolve(): f for f in project.train}
    new_texts: dict[Path, str] = {}
    for path, by_intent in additions.items():
        nf = files.get(path.resolve()) or nludata.parse_text(path, "")
        wanted = {}
        for intent, texts in by_intent.items():
            wanted[intent] = [e.text for e in nf.examples("intent") if e.name == intent] + texts
        new_texts[path] = _rewrite(nf, wanted, s)
    return new_texts, summary, project


def _plan_export(
    project: Project, rows: list[tuple[int, dict[str, str]]], csv_path: Path
) -> tuple[dict[Path, str], ImportSummary, Project]:
    s = project.settings
    summary = ImportSummary()
    problems: list[str] = []
    valid = project.domain.valid_labels({e.name for e in project.train_examples() if "/" in e.name})
    topics = project.topic_map()
    wanted: dict[Path, dict[str, list[str]]] = defaultdict(dict)
    seen: dict[tuple[str, str], int] = {}
    mentioned: set[str] = set()
    for rownum, row in rows:
        intent = row.get("intent", "").strip()
        if not intent:
            problems.append(f"dòng {rownum}: cột intent trống")
            continue
        text = _clean_row_text(row.get("text", ""), rownum, problems)
        if text is None or not _check_label(project, intent, rownum, problems, valid):
            continue
        _check_entities(project, text, rownum, problems)
        path = (
            _resolve_file(s, row["file"], rownum, problems)
            if row.get("file", "").strip()
            else _topic(s, topics, intent)
        )
        if path is None:
            continue
        mentioned.add(intent)
        # Only exact repeats are dropped: spelling variants ("huỷ"/"hủy", "SMS"/"sms") are kept, as written.
        key = (intent, text)
        if key in seen:
            summary.skipped_duplicates += 1
            summary.warnings.append(f"dòng {rownum}: trùng dòng {seen[key]} (bỏ qua)")
            continue
        seen[key] = rownum
        wanted[path].setdefault(intent, []).append(text)
    if problems:
        raise ImportFailed(problems)
    files = {f.path.resolve(): f for f in project.train}
    # Every file holding a mentioned intent is rewritten: its blocks for those intents become the CSV rows.
    for f in project.train:
        for e in f.examples("intent"):
            if e.name in mentioned:
                wanted.setdefault(f.path, {}).setdefault(e.name, [])
    before = {
        (f.path.resolve(), e.name, e.text)
        for f in project.train
        for e in f.examples("intent")
        if e.name in mentioned
    }
    after = {(p.resolve(), i, t) for p, by in wanted.items() for i, ts in by.items() for t in ts}
    summary.added, summary.removed = len(after - before), len(before - after)
    new_texts: dict[Path, str] = {}
    for path, by_intent in wanted.items():
        nf = files.get(path.resolve()) or nludata.parse_text(path, "")
        text = _rewrite(nf, by_intent, s)
        if text != nf.text:
            new_texts[path] = text
    return new_texts, summary, project


def _rewrite(nf: nludata.NluFile, wanted: dict[str, list[str]], s: Settings) -> str:
    try:
        text = nludata.rewrite(nf, wanted)
    except ValueError as exc:
        raise ImportFailed([f"{s.rel(nf.path)}: không sửa được tự động: {exc}"]) from None
    # Read the result back: it must parse and hold exactly the intended examples.
    back = nludata.parse_text(nf.path, text)
    got: dict[str, list[str]] = defaultdict(list)
    for e in back.examples("intent"):
        got[e.name].append(e.text)
    if not back.ok or any(got.get(i, []) != ts for i, ts in wanted.items()):
        raise ImportFailed([f"{s.rel(nf.path)}: lỗi nội bộ khi ghi tệp (đọc lại không khớp); không ghi gì"])
    return text


def _stage(settings: Settings, new_texts: dict[Path, str], into: Path) -> Settings:
    """Copy what validation reads into `into`, with the new file texts; return settings rooted there."""
    for rel in (settings.domain, settings.data_dir, settings.nlu_dir, settings.test_dir, settings.config):
        src = settings.path(rel)
        dst = into / rel
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    thresholds = settings.root / "nlu_thresholds.yml"
    if thresholds.exists():
        shutil.copy2(thresholds, into / "nlu_thresholds.yml")
    for path, text in new_texts.items():
        dst = into / path.resolve().relative_to(settings.root.resolve())
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(text, encoding="utf-8")
    from dataclasses import replace

    return replace(settings, root=into)


def import_csv(settings: Settings, csv_path: Path, with_rasa: bool = True) -> ImportSummary:
    """Plan, validate in a staging copy, then atomically replace the changed files."""
    new_texts, summary, project = plan_import(settings, csv_path)
    for path in new_texts:
        if not path.resolve().is_relative_to(settings.root.resolve()):
            raise ImportFailed([f"{path}: nằm ngoài dự án"])
    if new_texts:
        before = {i.key for i in checks.run_all(project) if i.level == "error"}
        with tempfile.TemporaryDirectory(prefix="trainer-stage-") as tmp:
            staged = _stage(settings, new_texts, Path(tmp))
            result = validate.run(staged, with_rasa=with_rasa)
            new_errors = [i for i in result.errors if i.key not in before]
            if new_errors or result.rasa_ok is False:
                msgs = [f"sau khi nhập sẽ có lỗi: {i}" for i in new_errors]
                if result.rasa_ok is False:
                    msgs.append("rasa data validate không đạt trên dữ liệu sau khi nhập:")
                    msgs += validate._rasa_lines_worth_showing(result.rasa_output)[:30]
                raise ImportFailed(msgs)
        for path, text in new_texts.items():
            csvio.atomic_write(path, text.encode("utf-8"))
    summary.files = sorted(settings.rel(p) for p in new_texts)
    return summary
