"""common/yaml_files.py: the C parser where PyYAML has it, the documents of `yaml.safe_load`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from common import yaml_files

ROOT = Path(__file__).resolve().parent.parent
# The files the services read with it: the bot's domain (desk, notifier), the desk's texts, the
# signing service's processing times.
FILES = [
    ROOT / "domain.yml",
    ROOT / "signing_service" / "service_limits.yml",
    *sorted((ROOT / "agent_desk" / "texts").glob("*.yml")),
]


def test_the_c_parser_is_used_when_pyyaml_has_it() -> None:
    assert yaml.__with_libyaml__, "PyYAML without libyaml: the desk reads domain.yml ten times slower"
    assert yaml_files.SafeLoader is yaml.CSafeLoader


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_same_documents_as_safe_load(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert yaml_files.safe_load(text) == yaml.safe_load(text)
    with path.open(encoding="utf-8") as fh:
        assert yaml_files.safe_load(fh) == yaml.safe_load(text)


def test_unsafe_tags_and_syntax_errors_are_refused_with_their_line() -> None:
    with pytest.raises(yaml.YAMLError):
        yaml_files.safe_load("x: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(yaml.MarkedYAMLError) as caught:
        yaml_files.safe_load("a: 1\nb: [\n")
    assert caught.value.problem_mark is not None and caught.value.problem_mark.line >= 1
