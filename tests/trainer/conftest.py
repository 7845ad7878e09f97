"""A tiny copy of a project (domain, config, topic files, held-out set) in a tmp dir for each test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer import settings as settings_mod

ROOT = Path(__file__).resolve().parents[2]

DOMAIN = """version: "3.1"
intents:
  - greet
  - goodbye
  - track_request
  - faq
entities:
  - request_code
  - power_unit
responses:
  utter_greet:
    - text: "Xin chào anh/chị."
  utter_goodbye:
    - text: "Chào anh/chị."
  utter_faq/hotline:
    - text: "Tổng đài 19001909."
  utter_faq/processing_time:
    - text: "3 ngày làm việc ở thành phố, 5 ngày ở nông thôn."
"""

# Small and fast on a shared CPU: a few epochs are enough to separate four clear intents, and eager
# mode skips TensorFlow's graph tracing, which costs far more than training on 30 examples.
CONFIG = """recipe: default.v1
language: vi
assistant_id: trainer-test
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
    case_sensitive: false
  - name: RegexEntityExtractor
    case_sensitive: false
    use_regexes: true
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 2
    max_ngram: 4
  - name: DIETClassifier
    epochs: 15
    random_seed: 1
    run_eagerly: true
    number_of_transformer_layers: 0
    hidden_layers_sizes: {text: [64]}
    embedding_dimension: 16
  - name: ResponseSelector
    retrieval_intent: faq
    epochs: 10
    random_seed: 1
    run_eagerly: true
    number_of_transformer_layers: 0
policies:
  - name: RulePolicy
"""

GENERAL = """version: "3.1"

nlu:
- intent: greet
  examples: |
    - xin chào
    - chào bạn
    - chào em
    - alo
    - hello
    - chào buổi sáng

- intent: goodbye
  examples: |
    - tạm biệt
    - chào nhé
    - hẹn gặp lại
    - bye
    - thôi chào em
    - tôi đi đây
"""

LOOKUP = """version: "3.1"

nlu:
- intent: track_request
  examples: |
    - tra cứu hồ sơ [PC05TK0000123](request_code)
    - hồ sơ [pc05tk0000456](request_code) đến đâu rồi
    - kiểm tra tiến độ yêu cầu cấp điện
    - hồ sơ của tôi xử lý tới đâu
    - xem tình trạng hồ sơ [PC04HC0004567](request_code)
    - tra cứu yêu cầu ở [Tam Kỳ](power_unit)

- regex: request_code
  examples: |
    - [Pp][Cc]\\d{2}[A-Za-z]{2}[\\s-]?\\d{7}
"""

FAQ = """version: "3.1"

nlu:
- intent: faq/hotline
  examples: |
    - số tổng đài là gì
    - cho xin số hotline
    - gọi điện cho điện lực số nào
    - số điện thoại chăm sóc khách hàng
    - hotline điện lực

- intent: faq/processing_time
  examples: |
    - cấp điện mất bao lâu
    - bao nhiêu ngày thì có điện
    - thời gian xử lý hồ sơ
    - mấy ngày thì lắp công tơ
    - thời hạn cấp điện mới
"""

TEST = """version: "3.1"

nlu:
- intent: greet
  examples: |
    - xin chào bạn
    - chào anh
- intent: goodbye
  examples: |
    - tạm biệt nhé
    - bye bye
- intent: track_request
  examples: |
    - tra cứu tiến độ hồ sơ [PC05HA0000789](request_code)
    - hồ sơ cấp điện của tôi tới đâu rồi
- intent: faq/hotline
  examples: |
    - số hotline là bao nhiêu
- intent: faq/processing_time
  examples: |
    - bao lâu thì được cấp điện
"""

THRESHOLDS = """min_accuracy: 0.5
min_accuracy_no_diacritics: 0.3
min_examples_per_intent: 5
review_max_confidence: 0.6
"""


def write_project(root: Path) -> Path:
    files = {
        "domain.yml": DOMAIN,
        "config.yml": CONFIG,
        # The reference row's pipeline: the same tiny one with another seed, to stay fast.
        "trainer/reference_config.yml": CONFIG.replace("random_seed: 1", "random_seed: 2"),
        "nlu_thresholds.yml": THRESHOLDS,
        "bot/data/nlu/general.yml": GENERAL,
        "bot/data/nlu/lookup.yml": LOOKUP,
        "bot/data/nlu/faq.yml": FAQ,
        "tests/nlu/test.yml": TEST,
    }
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "proj")


@pytest.fixture
def settings(project: Path) -> settings_mod.Settings:
    return settings_mod.load(project)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root with its bytes: to prove that nothing was overwritten."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -m trainer --root <root> ...` as the Makefile runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "trainer", "--root", str(root), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
