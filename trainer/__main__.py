"""Command line of the trainer workflow (the Makefile targets call this).

    python -m trainer validate              # make validate
    python -m trainer report [--finetune]   # make nlu-report
    python -m trainer crossval [--folds 3]  # make crossval
    python -m trainer review [--db PATH|URL] [--out reports/review.csv]      # make review
    python -m trainer import FILE.csv       # make import-nlu FILE=...
    python -m trainer export [--out reports/nlu-data.csv]                    # make export-nlu
    python -m trainer topics                # which topic file each intent's new examples go to

Exit status: 0 when everything passed, 1 when a check/threshold failed, 2 on unusable input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trainer import settings as settings_mod


def _settings(args: argparse.Namespace) -> settings_mod.Settings:
    return settings_mod.load(Path(args.root) if args.root else None)


def cmd_validate(args: argparse.Namespace) -> int:
    from trainer import validate

    s = _settings(args)
    result = validate.run(s, with_rasa=not args.no_rasa)
    validate.print_result(result, s)
    return 0 if result.ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    from deploy import rasa_fast_start, rasa_patches
    from trainer import nlumodel, report

    rasa_patches.install(rasa_fast_start.PATCHES)  # models load without Rasa's training step; same parses

    s = _settings(args)
    try:
        result = report.build(
            s,
            config=args.config,
            finetune=args.finetune,
            cache=Path(args.cache) if args.cache else None,
            with_reference=not args.no_reference,
        )
    except (report.ReportError, nlumodel.TrainingFailed) as exc:
        print(f"LỖI: {exc}", file=sys.stderr)
        return 2
    for run in result.runs:
        print(
            f"{run.name}: độ chính xác {100 * run.accuracy:.1f} %, F1 "
            f"macro {100 * run.macro_f1:.1f} % ({len(run.cases)} câu)"
        )
    print(f"Báo cáo: {s.rel(result.out_dir / 'report.html')} và {s.rel(result.out_dir / 'report.md')}")
    for line in result.failures:
        print(f"KHÔNG ĐẠT: {line}", file=sys.stderr)
    return 0 if result.ok else 1


def cmd_crossval(args: argparse.Namespace) -> int:
    from trainer import crossval

    s = _settings(args)
    try:
        path = crossval.run(s, folds=args.folds, config=args.config)
    except crossval.CrossvalFailed as exc:
        print(f"LỖI: {exc}", file=sys.stderr)
        return 2
    print(path.read_text(encoding="utf-8"))
    print(f"Kết quả: {s.rel(path)}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from trainer import review

    s = _settings(args)
    out = Path(args.out) if args.out else s.root / "reports" / "review.csv"
    try:
        n = review.export_review(s, out, db=args.db, limit=args.limit)
    except review.ReviewError as exc:
        print(f"LỖI: {exc}", file=sys.stderr)
        return 2
    print(
        f"Đã ghi {n} câu cần xem vào {s.rel(out)} (mở bằng "
        "Excel, điền cột label, rồi make import-nlu FILE=...)"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from trainer import nlucsv

    s = _settings(args)
    try:
        summary = nlucsv.import_csv(s, Path(args.file), with_rasa=not args.no_rasa)
    except nlucsv.ImportFailed as exc:
        print(f"KHÔNG NHẬP (không tệp nào bị thay đổi) — {len(exc.problems)} vấn đề:", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return 2
    for w in summary.warnings:
        print(f"  cảnh báo: {w}")
    print(
        f"Đã nhập: thêm {summary.added}, bỏ {summary.removed}, "
        f"bỏ qua {summary.skipped_duplicates} câu trùng, "
        f"{summary.skipped_unlabelled} dòng chưa có nhãn. Tệp "
        f"đã sửa: {', '.join(summary.files) or '(không có)'}"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from trainer import nlucsv

    s = _settings(args)
    out = Path(args.out) if args.out else s.root / "reports" / "nlu-data.csv"
    try:
        n = nlucsv.export(s, out)
    except nlucsv.ImportFailed as exc:
        print("LỖI: dữ liệu hỏng, sửa trước khi xuất:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    print(f"Đã xuất {n} câu vào {s.rel(out)}")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from trainer.project import Project

    s = _settings(args)
    for intent, path in sorted(Project.load(s).topic_map().items()):
        print(f"{intent:28} → {s.rel(path)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", help="project root (default: this checkout)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="rasa data validate + the trainer checks")
    p.add_argument("--no-rasa", action="store_true", help="only the trainer checks (fast)")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("report", help="train/reuse the NLU model, test it, write reports/nlu/")
    p.add_argument("--config", help="Rasa config file (default config.yml)")
    p.add_argument(
        "--finetune", action="store_true", help="continue from the last NLU model (Rasa --finetune)"
    )
    p.add_argument("--cache", help="model cache directory (default: the project's model cache)")
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the reference row (Rasa's default pipeline on the same data: one more training)",
    )
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("crossval", help="k-fold cross-validation (slow)")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--config")
    p.set_defaults(func=cmd_crossval)
    p = sub.add_parser("review", help="export poorly understood customer messages to a CSV")
    p.add_argument("--db", help="SQLite path or SQLAlchemy URL of the event broker / tracker store")
    p.add_argument("--out")
    p.add_argument("--limit", type=int, default=2000)
    p.set_defaults(func=cmd_review)
    p = sub.add_parser("import", help="import a labelled review CSV or an edited export CSV")
    p.add_argument("file")
    p.add_argument(
        "--no-rasa", action="store_true", help="skip rasa data validate (the trainer checks still run)"
    )
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("export", help="export all NLU examples to a CSV")
    p.add_argument("--out")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("topics", help="print the intent → topic file mapping used by import")
    p.set_defaults(func=cmd_topics)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except settings_mod.SettingsError as exc:
        print(f"LỖI: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
