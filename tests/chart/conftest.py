"""Chart test helpers: Helm actions (run by Helm's Go code in a subprocess),
values merging for the ci/ scenarios, and manifest lookup."""
from __future__ import annotations

import copy
import json
import pathlib
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "podsup-operator"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
ERROR = 3  # Helm's support.ErrorSev


def helm(action: str, chart: pathlib.Path, *args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.chart.helmrun", action, str(chart), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        raise AssertionError(f"helm {action} {chart} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def merge(base: Any, override: Any) -> Any:
    """Deep-merge ``override`` into ``base`` like Helm coalesces a values file
    over the chart's values.yaml (maps merge, everything else replaces)."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def default_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def scenario_values(path: pathlib.Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def chart_copy(tmp_path: pathlib.Path, values: dict) -> pathlib.Path:
    """A copy of the chart whose values.yaml is ``values`` (to lint a scenario:
    helm-sdkpy's Lint takes no values of its own)."""
    dest = tmp_path / "podsup-operator"
    shutil.copytree(CHART, dest)
    (dest / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return dest


def lint_errors(chart: pathlib.Path) -> list[str]:
    """Errors of Helm's lint (helm-sdkpy); with readable messages if any."""
    result = helm("lint", chart)
    assert result["total"] == 1, result
    errors = [m for m in result["messages"] if m["severity"] >= ERROR]
    if not errors and not result["errors"]:
        return []
    detail = helm("lint-messages", chart)
    return [f"{m['path']}: {m['error']}" for m in detail["messages"] if m["severity"] >= ERROR] \
        or [f"{m['path']}: (no message)" for m in errors]


def render(values: dict | None = None, release: str = "podsup") -> list[dict]:
    """Every object the chart renders with ``values`` (over the defaults)."""
    manifests = helm("render", CHART, json.dumps(values or {}), release)
    objects = []
    for name, text in sorted(manifests.items()):
        if name.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("__template__", name)
                objects.append(doc)
    return objects


def render_notes(values: dict | None = None) -> str:
    manifests = helm("render", CHART, json.dumps(values or {}))
    return next(text for name, text in manifests.items() if name.endswith("NOTES.txt"))


def operator_part(obj: dict) -> bool:
    """Objects of the operator's own templates. The metrics API's templates
    (metrics-api-*.yaml: APIServices, its Service, serving certificate and
    auth bindings) belong to the metrics API, the WorkerPool's (workerpool-*:
    the CRD, the users' aggregated roles) to the resource; each has tests of
    its own."""
    return not obj.get("__template__", "").rsplit("/", 1)[-1].startswith(("metrics-api-", "workerpool-"))


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if operator_part(o) and o["kind"] == kind
            and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict], kind: str) -> dict:
    found = find(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


@pytest.fixture(scope="session")
def default_objects() -> list[dict]:
    return render()
