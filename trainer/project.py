"""The project as the trainer sees it: the domain's names and the NLU files, with where each intent lives."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from trainer import nludata
from trainer.settings import Settings


@dataclass
class Domain:
    intents: set[str] = field(default_factory=set)
    entities: set[str] = field(default_factory=set)
    responses: set[str] = field(default_factory=set)
    problem: str | None = None

    @property
    def retrieval_intents(self) -> set[str]:
        """Intents answered by a response selector: there are `utter_<intent>/<key>` responses.

        One pass over the responses (`utter_<base>/...` gives `<base>`), not one per intent: the
        checks ask for every sub-intent example (5 s per workbench check with 4,000 examples)."""
        bases = {
            r[len("utter_") :].partition("/")[0]
            for r in self.responses
            if r.startswith("utter_") and "/" in r
        }
        found = {i for i in self.intents if "/" not in i and i in bases}
        # An intent name with a slash cannot be a base above: checked the long way (none in practice).
        found |= {
            i for i in self.intents if "/" in i and any(r.startswith(f"utter_{i}/") for r in self.responses)
        }
        return found

    def knows_intent(self, name: str) -> bool:
        base, _, sub = name.partition("/")
        return base in self.intents and (not sub or not self.responses or base in self.retrieval_intents)

    def valid_labels(self, sub_intents: set[str]) -> list[str]:
        """Labels a trainer may use: plain intents, and retrieval sub-intents known from responses or data."""
        subs = {r[len("utter_") :] for r in self.responses if "/" in r and r.startswith("utter_")}
        subs |= {s for s in sub_intents if self.knows_intent(s)}
        plain = self.intents - self.retrieval_intents
        return sorted(plain | subs)


def _names(items: object) -> set[str]:
    """Names from a domain list whose items are strings or one-key mappings (`- greet: {...}`)."""
    out: set[str] = set()
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, dict) and len(item) == 1:
            out.add(str(next(iter(item))))
    return out


def load_domain(path: Path) -> Domain:
    files = sorted(path.rglob("*.yml")) if path.is_dir() else [path]
    dom = Domain()
    for f in files:
        if not f.exists():
            dom.problem = f"không tìm thấy {f}"
            continue
        try:
            data = yaml.load(f.read_text(encoding="utf-8"), Loader=nludata.LOADER) or {}  # noqa: S506 (safe)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            dom.problem = f"{f}: không đọc được domain: {exc}"
            continue
        if not isinstance(data, dict):
            continue
        dom.intents |= _names(data.get("intents"))
        dom.entities |= _names(data.get("entities"))
        responses = data.get("responses")
        if isinstance(responses, dict):
            dom.responses |= {str(k) for k in responses}
    return dom


@dataclass
class Project:
    settings: Settings
    domain: Domain
    train: list[nludata.NluFile]
    test: list[nludata.NluFile]

    @classmethod
    def load(cls, settings: Settings) -> Project:
        return cls(
            settings=settings,
            domain=load_domain(settings.path(settings.domain)),
            train=nludata.read_dir(settings.path(settings.nlu_dir)),
            test=nludata.read_dir(settings.path(settings.test_dir)),
        )

    def train_examples(self) -> list[nludata.Example]:
        return [e for f in self.train for e in f.examples("intent")]

    def topic_map(self) -> dict[str, Path]:
        """Intent → the topic file new examples go to.

        Where the intent already has most examples; else the `topic_files` entry of nlu_thresholds.yml;
        else, for a retrieval sub-intent (faq/x), the file holding most of its siblings; else a new
        file named after the intent. Documented in docs/trainer-guide.vi.md.
        """
        counts: dict[str, Counter[Path]] = {}
        for e in self.train_examples():
            counts.setdefault(e.name, Counter())[e.file] += 1
        out = {name: c.most_common(1)[0][0] for name, c in counts.items()}
        base_counts: dict[str, Counter[Path]] = {}
        for name, c in counts.items():
            if "/" in name:
                base_counts.setdefault(name.split("/")[0], Counter()).update(c)
        subs = {n for n in counts if "/" in n}
        for label in self.domain.valid_labels(subs):
            if label in out:
                continue
            if label in self.settings.topic_files:
                out[label] = self.settings.path(self.settings.topic_files[label])
            elif "/" in label and label.split("/")[0] in base_counts:
                out[label] = base_counts[label.split("/")[0]].most_common(1)[0][0]
            else:
                out[label] = self.settings.path(self.settings.nlu_dir) / f"{label.split('/')[0]}.yml"
        return out
