"""The dashboard and the alerts the chart ships: every PromQL expression is
valid (promtool parses it) and names only metrics podsup or the operator
export (tests/chart/exported_metrics.py reads them from the code); the
alerts pass `promtool check rules` and their unit tests (`promtool test
rules`, tests/chart/prometheus/alerts-test.yaml); each alert has a runbook
in docs/runbooks.md."""
from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from tests.chart.conftest import CHART, ROOT, one, render
from tests.chart.exported_metrics import exported, promql_metric_names

DASHBOARDS = sorted((CHART / "files" / "dashboards").glob("*.json"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(not PROMTOOL, reason="promtool is not installed (Debian: prometheus)")
RUNBOOKS = ROOT / "docs" / "runbooks.md"
#: what the dashboard covers, per pool (issue 12)
PANELS = ["replicas vs desired", "busy / idle", "per second", "queue depth", "restarts by reason", "crash loop",
          "drain", "hpa desired vs current"]


@pytest.fixture(scope="module")
def names(tmp_path_factory) -> set[str]:
    found = exported(tmp_path_factory.mktemp("podsup"))
    assert {"podsup_workers", "podsup_busy_ratio", "podsup_operator_reconciles_total"} <= found
    return found


def dashboard_exprs(dashboard: dict) -> list[tuple[str, str]]:
    out = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            out.append((f"${var['name']}", inner.group(1)))
    return out


def grafana_to_promql(expr: str) -> str:
    """Grafana's variables as Prometheus sees them after interpolation."""
    return expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")


def promtool(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def rendered_rules() -> dict:
    rule = one(render({"prometheusRule": {"enabled": True}}), "PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


def test_the_extractor_finds_names_and_only_names():
    assert promql_metric_names('sum by (pod, queue) (rate(a_total{job="x", b=~"y"}[5m])) / on (pod) '
                               'group_left max(b) > 0 and absent(c) or count_over_time((d == 1)[30m:15s])') == \
        {"a_total", "b", "c", "d"}


def test_dashboard_is_one_configmap_for_the_grafana_sidecar():
    cm = one(render({"grafanaDashboard": {"enabled": True, "namespace": "monitoring"}}), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    assert sorted(cm["data"]) == [p.name for p in DASHBOARDS]
    for path in DASHBOARDS:
        assert json.loads(cm["data"][path.name]) == json.loads(path.read_text())


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_covers_each_pool_view(path):
    dashboard = json.loads(path.read_text())
    text = " ".join((p["title"] + " " + p.get("description", "")).lower() for p in dashboard["panels"])
    assert [want for want in PANELS if want not in text] == []
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"datasource", "namespace", "workerpool"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_expression_names_an_exported_metric(path, names):
    dashboard = json.loads(path.read_text())
    for title, expr in dashboard_exprs(dashboard):
        used = promql_metric_names(grafana_to_promql(expr))
        assert used, f"{title}: {expr} names no metric"
        assert used <= names, f"{title}: {sorted(used - names)} are exported by neither podsup nor the operator"


@needs_promtool
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_expression_parses(path, tmp_path):
    exprs = dashboard_exprs(json.loads(path.read_text()))
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr{i}", "expr": grafana_to_promql(e)} for i, (_, e) in enumerate(exprs)]}]}
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump(rules))
    proc = promtool("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_expression_names_an_exported_metric(names):
    for group in rendered_rules()["groups"]:
        for rule in group["rules"]:
            used = promql_metric_names(rule["expr"])
            assert used and used <= names, f"{rule['alert']}: {sorted(used - names)} not exported"


@needs_promtool
def test_alerts_pass_promtool_check_and_unit_tests(tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rendered_rules(), sort_keys=False))
    shutil.copy(ROOT / "tests" / "chart" / "prometheus" / "alerts-test.yaml", tmp_path / "alerts-test.yaml")
    check = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    test = promtool("test", "rules", "alerts-test.yaml", cwd=tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_alert_has_a_unit_test_and_a_runbook():
    alerts = [r["alert"] for g in rendered_rules()["groups"] for r in g["rules"]]
    assert len(alerts) == 5
    tests = yaml.safe_load((ROOT / "tests" / "chart" / "prometheus" / "alerts-test.yaml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert set(alerts) <= tested
    runbooks = RUNBOOKS.read_text()
    headings = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^## (.+)$", runbooks, re.M)}
    for group in rendered_rules()["groups"]:
        for rule in group["rules"]:
            anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
            assert anchor in headings, f"{rule['alert']}: no '## {rule['alert']}' in docs/runbooks.md"


def test_metrics_api_alert_only_with_the_metrics_api():
    rule = one(render({"prometheusRule": {"enabled": True}, "metricsApi": {"enabled": False}}), "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "PodsupMetricsAPIUnavailable" not in alerts and "PodsupOperatorReconcileErrors" in alerts


def test_runbook_url_and_labels_are_values():
    rule = one(render({"prometheusRule": {"enabled": True, "runbookUrl": "https://wiki.example/podsup",
                                          "labels": {"release": "prom"}}}), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"
    urls = {r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert all(u.startswith("https://wiki.example/podsup#") for u in urls)
