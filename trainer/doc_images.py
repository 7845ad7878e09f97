"""Refresh the report pictures of docs/trainer-guide.vi.md from the last `make nlu-report`.

    .venv/bin/python -m trainer.doc_images

Copies the charts and takes screenshots of reports/nlu/report.html with Debian's chromium (playwright).
"""

from __future__ import annotations

import shutil
import sys

from trainer.settings import ROOT

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    report = ROOT / "reports" / "nlu"
    img = ROOT / "docs" / "img"
    if not (report / "report.html").exists():
        print("Chưa có báo cáo: chạy make nlu-report trước", file=sys.stderr)
        return 2
    img.mkdir(parents=True, exist_ok=True)
    shutil.copy2(report / "confusion_matrix.png", img / "trainer-confusion.png")
    shutil.copy2(report / "intent_f1.png", img / "trainer-f1.png")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 620})
        page.goto((report / "report.html").as_uri())
        page.screenshot(path=str(img / "trainer-report.png"))
        errors = page.locator("h3:has-text('Các câu sai') + table").first
        if errors.count():
            errors.screenshot(path=str(img / "trainer-errors.png"))
        browser.close()
    print(f"Đã cập nhật ảnh trong {img}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
