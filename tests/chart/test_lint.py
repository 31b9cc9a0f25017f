"""`helm lint` (Helm's Go code via helm-sdkpy) of the chart: default values and
every charts/podsup-operator/ci/*-values.yaml scenario. Lint renders every
template and applies values.schema.json, so an error in either fails here."""
from __future__ import annotations

import pytest

from tests.chart.conftest import CHART, SCENARIOS, chart_copy, default_values, lint_errors, merge, scenario_values


def test_there_are_ci_scenarios():
    assert len(SCENARIOS) >= 3, [p.name for p in SCENARIOS]


def test_lint_default_values():
    assert lint_errors(CHART) == []


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_lint_scenario(scenario, tmp_path):
    values = merge(default_values(), scenario_values(scenario))
    assert lint_errors(chart_copy(tmp_path, values)) == []


def test_lint_reports_a_broken_template(tmp_path):
    """The gate is not vacuous: a template error is reported, with its text."""
    chart = chart_copy(tmp_path, default_values())
    (chart / "templates" / "broken-configmap.yaml").write_text("{{ .Values.nothing.here }}\n")
    errors = lint_errors(chart)
    assert errors and any("nothing" in e for e in errors), errors


def test_lint_reports_values_the_schema_refuses(tmp_path):
    chart = chart_copy(tmp_path, merge(default_values(), {"operator": {"logFormat": "xml"}}))
    errors = lint_errors(chart)
    assert any("logFormat" in e for e in errors), errors
