"""docs/workerpool-reference.md is generated from the CRD and is current."""
from __future__ import annotations

import copy
import importlib.util
import pathlib
import subprocess
import sys

import yaml

from podsup import names

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen-reference.py"


def gen():
    spec = importlib.util.spec_from_file_location("gen_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def crd():
    return yaml.safe_load((ROOT / "crds" / "workerpools.podsup.io.yaml").read_text())


def test_reference_is_current():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_reference_follows_the_crd_descriptions():
    module = gen()
    changed = copy.deepcopy(crd())
    version = next(v for v in changed["spec"]["versions"] if v.get("storage"))
    version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["image"]["description"] = "NEW TEXT"
    assert "NEW TEXT" in module.render(changed)
    assert module.render(changed) != (ROOT / "docs" / "workerpool-reference.md").read_text()


def test_reference_lists_every_field_and_rule_and_the_hpa_metrics():
    text = (ROOT / "docs" / "workerpool-reference.md").read_text()
    version = next(v for v in crd()["spec"]["versions"] if v.get("storage"))
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for key in spec["properties"]:
        assert f"| `spec.{key}` |" in text, key
    for rule in spec.get("x-kubernetes-validations", []):
        assert rule["message"] in text
    for metric in (names.METRIC_REQUESTS_PER_SECOND, names.METRIC_BUSY_RATIO, names.METRIC_QUEUE_DEPTH):
        assert f"`{metric}`" in text
