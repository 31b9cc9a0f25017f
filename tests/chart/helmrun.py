"""Run one Helm action with Helm's own Go code and print its result as JSON.

Called by the chart tests as a subprocess (``python -m tests.chart.helmrun``):
helm-sdkpy and helm-python-sdk each load a Go runtime, and two Go runtimes
must never share one process, so each action gets a fresh one.

    lint CHART_DIR                   helm-sdkpy's Lint action (the CI gate)
    lint-messages CHART_DIR          helm-python-sdk's lint, for readable messages
    render CHART_DIR VALUES_JSON [RELEASE]  helm-python-sdk's offline render (helm template)
    validate CHART_DIR VALUES_JSON   the chart's values.schema.json, applied by Helm
    install CHART_DIR VALUES_JSON RELEASE NAMESPACE   helm install --wait (e2e, $KUBECONFIG)
    uninstall - RELEASE NAMESPACE                    helm uninstall --wait (e2e)
"""
from __future__ import annotations

import asyncio
import json
import sys


def lint(chart: str) -> dict:
    import helm_sdkpy

    result = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration()).run(chart))
    return {
        "total": result.get("TotalChartsLinted"),
        "messages": [{"severity": m.get("Severity"), "path": m.get("Path")}
                     for m in result.get("Messages") or []],
        "errors": len(result.get("Errors") or []),
    }


def lint_messages(chart: str) -> dict:
    import helm_python

    return helm_python.lint(chart)


def render(chart: str, values: dict, release: str = "podsup") -> dict:
    import helm_python

    loaded = helm_python.Chart.load(chart)
    return loaded.render(values, name=release, namespace="podsup-system", is_install=True)


def validate(chart: str, values: dict) -> dict:
    import helm_python

    try:
        helm_python.Chart.load(chart).validate_schema(values)
    except helm_python.HelmValuesError as exc:
        return {"valid": False, "error": str(exc)}
    return {"valid": True, "error": None}


def install(chart: str, values: dict, release: str, namespace: str) -> dict:
    import helm_sdkpy

    config = helm_sdkpy.Configuration(namespace=namespace)
    result = asyncio.run(helm_sdkpy.Install(config).run(release, chart, values=values, create_namespace=True,
                                                         wait=True, timeout=300))
    return {"installed": True, "name": result.get("name") if isinstance(result, dict) else None}


def uninstall(release: str, namespace: str) -> dict:
    import helm_sdkpy

    config = helm_sdkpy.Configuration(namespace=namespace)
    asyncio.run(helm_sdkpy.Uninstall(config).run(release, wait=True, timeout=300))
    return {"uninstalled": True}


def main(argv: list[str]) -> int:
    action, chart, *rest = argv
    if action == "lint":
        out = lint(chart)
    elif action == "lint-messages":
        out = lint_messages(chart)
    elif action == "render":
        out = render(chart, json.loads(rest[0]), *rest[1:])
    elif action == "validate":
        out = validate(chart, json.loads(rest[0]))
    elif action == "install":
        out = install(chart, json.loads(rest[0]), rest[1], rest[2])
    elif action == "uninstall":
        out = uninstall(rest[0], rest[1])
    else:
        raise SystemExit(f"helmrun: unknown action {action!r}")
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
