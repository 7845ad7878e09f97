"""deploy/grafana and deploy/prometheus speak of metrics the code really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY, Metric
from prometheus_client.metrics import MetricWrapperBase

from common import metrics
from signing_service.http.app import COUNTERS_COLLECTOR

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "cskh-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SCRAPE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
NAME = re.compile(r"\bcskh_[a-z0-9_]+")
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}


def families() -> list[Metric]:
    ours = [m for m in REGISTRY.collect() if m.name.startswith("cskh_")]
    return ours + list(COUNTERS_COLLECTOR.collect())


def series_names() -> set[str]:
    """Every series name PromQL can use for the code's metric families."""
    return {f.name + suffix for f in families() for suffix in SUFFIXES[f.type]}


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def test_every_metric_the_dashboard_and_alerts_use_exists() -> None:
    known = series_names()
    exprs = dashboard_exprs() + [r["expr"] for r in alert_rules()]
    used = {name for e in exprs for name in NAME.findall(e)}
    assert used, "no cskh_ metric found: the files did not parse as expected"
    assert used <= known, f"unknown metrics: {sorted(used - known)}"


def test_every_metric_family_is_on_the_dashboard() -> None:
    shown = {name for e in dashboard_exprs() for name in NAME.findall(e)}
    declared = {m._name for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}
    assert len(declared) >= 10
    missing = {name for name in declared if not any(s == name or s.startswith(name + "_") for s in shown)}
    assert not missing, f"declared in common/metrics.py but not on the dashboard: {sorted(missing)}"


def test_alert_rules_are_well_formed() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("[") == expr.count("]"), rule["alert"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"]
    assert {"CskhBotReplySlow", "CskhNluFallbackHigh", "CskhOtpFreezeSpike", "CskhChannelSendErrors"} <= set(
        names
    )
    assert "CskhHandoffWaitLong" in names


def test_labels_stay_bounded() -> None:
    """No label that could hold an id, a code, a phone number or a user."""
    allowed = {"service", "method", "route", "status", "channel", "outcome", "le"}
    for family in families():
        for sample in family.samples:
            assert set(sample.labels) <= allowed, (family.name, sample.labels)


def test_the_scrape_config_covers_every_process() -> None:
    config = yaml.safe_load(SCRAPE.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(jobs) == {"cskh-rasa", "cskh-actions", "cskh-signing", "cskh-desk", "cskh-notifier"}
    assert jobs["cskh-rasa"]["metrics_path"] == "/webhooks/metrics/"
    for job in jobs.values():
        assert job["authorization"]["type"] == "Bearer"
        assert job["static_configs"][0]["targets"]
