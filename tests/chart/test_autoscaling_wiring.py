"""The autoscaling chain fits together: the HPAs the operator builds ask for
metrics the chart's prometheus-adapter rules serve (same names, same kinds,
selector labels the series carry), the rules' queries are valid PromQL, and
the documented Prometheus scrape job is a valid configuration that produces
those labels. PromQL and configuration are checked by Prometheus' promtool."""
from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from podsup import names
from tests.chart.conftest import one, render

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "autoscaling-with-prometheus.md"


def promtool() -> str:
    exe = shutil.which("promtool")
    assert exe, "promtool is not installed (scripts/install-deps.sh installs Debian's prometheus)"
    return exe


@pytest.fixture(scope="module")
def adapter():
    cm = one(render({"prometheusAdapter": {"rules": {"enabled": True}}}), "ConfigMap")
    return yaml.safe_load(cm["data"]["config.yaml"])


def autoscaled_example_hpas():
    from podsup_operator.builders.hpa import build_hpa

    hpas = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == names.KIND:
                hpa = build_hpa(doc)
                if hpa:
                    hpas.append((path.name, hpa))
    return hpas


def test_every_metric_an_operator_hpa_reads_is_served_by_a_rule_of_its_kind(adapter):
    hpas = autoscaled_example_hpas()
    assert hpas, "no autoscaled example WorkerPool"
    pods_rules = {r["name"]["as"]: r for r in adapter["rules"]}
    external_rules = {r["name"]["as"]: r for r in adapter["externalRules"]}
    seen = set()
    for source, hpa in hpas:
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "Pods":
                name = metric["pods"]["metric"]["name"]
                assert name in pods_rules, f"{source}: Pods metric {name} has no adapter rule"
                seen.add(name)
            elif metric["type"] == "External":
                name = metric["external"]["metric"]["name"]
                assert name in external_rules, f"{source}: External metric {name} has no adapter externalRule"
                rule = external_rules[name]
                for label in metric["external"]["metric"]["selector"]["matchLabels"]:
                    assert f'{label}!=""' in rule["seriesQuery"], (label, rule["seriesQuery"])
                    assert rule["metricsQuery"].endswith(f"by ({label})")
                seen.add(name)
    assert seen == {names.METRIC_REQUESTS_PER_SECOND, names.METRIC_BUSY_RATIO, names.METRIC_QUEUE_DEPTH,
                    names.METRIC_POOL_SATURATION}


def test_adapter_queries_are_valid_promql(adapter, tmp_path):
    groups = []
    for kind, rules, matchers, group_by in (
            ("pods", adapter["rules"], 'namespace="default",pod=~"a|b"', "pod"),
            ("external", adapter["externalRules"], f'namespace="default",{names.EXTERNAL_SELECTOR_LABEL}="reports"',
             names.EXTERNAL_SELECTOR_LABEL)):
        for rule in rules:
            name = rule["name"]["as"]
            query = (rule["metricsQuery"].replace("<<.Series>>", name)
                     .replace("<<.LabelMatchers>>", matchers).replace("<<.GroupBy>>", group_by))
            assert "<<" not in query, query
            groups.append({"record": f"check:{kind}:{name}", "expr": query})
            groups.append({"record": f"check:{kind}:{name}:series", "expr": rule["seriesQuery"].strip("'")})
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "podsup-adapter", "rules": groups}]}))
    proc = subprocess.run([promtool(), "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(groups)} rules found" in proc.stdout


def documented_scrape_config() -> dict:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    configs = [yaml.safe_load(b) for b in blocks if "scrape_configs" in b]
    assert len(configs) == 1
    return configs[0]


def test_documented_scrape_job_is_valid_prometheus_config(tmp_path):
    """promtool checks the job, relabel rules included. Debian's Prometheus
    is built without Kubernetes service discovery, so the discovery block is
    swapped for a static target: every relabel rule is still parsed and
    checked (actions, regexes, label names)."""
    config = documented_scrape_config()
    (job,) = config["scrape_configs"]
    assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
    job["static_configs"] = [{"targets": ["127.0.0.1:9090"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    config = path
    proc = subprocess.run([promtool(), "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_documented_scrape_job_relabels_what_the_rules_and_hpa_need():
    (job,) = documented_scrape_config()["scrape_configs"]
    meta = "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", names.POOL_LABEL)
    targets = {r.get("target_label"): r["source_labels"] for r in job["relabel_configs"] if "target_label" in r}
    assert targets[names.EXTERNAL_SELECTOR_LABEL] == [meta]
    assert {"namespace", "pod"} <= set(targets)
    keeps = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": names.METRICS_PORT_NAME,
            "action": "keep"} in keeps
    assert any(r["source_labels"] == [meta] for r in keeps)


def test_doc_sets_only_chart_values_that_exist():
    import json

    schema = json.loads((ROOT / "charts" / "podsup-operator" / "values.schema.json").read_text())
    commands = re.findall(r"helm upgrade podsup-operator .*?(?:\n\n|```)", DOC.read_text(), re.S)
    keys = [k for c in commands for k in re.findall(r"--set ([\w.]+)=", c)]
    assert keys
    for dotted in keys:
        node = schema
        for part in dotted.split("."):
            props = node.get("properties", {})
            if part in props:
                node = props[part]
            else:
                assert isinstance(node.get("additionalProperties"), dict), f"{dotted}: no such chart value"
                node = node["additionalProperties"]
