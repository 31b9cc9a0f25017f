"""The offline validator (``podsup-operator render``) against a real API
server: for every pool of the corpora, the API server's answer to a
server-side dry run and ``validate_workerpool``'s are the same list of
problems, field paths and wording (kubectl's ``<nil>`` path of whole-object
problems left out, as render does). Uses a copy of the CRD under a group of
its own (one per run), so it never touches the cluster's WorkerPools;
skipped without a cluster in KUBECONFIG."""
from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from podsup_operator.validation import InvalidWorkerPool, validate_workerpool
from tests.e2e.cluster import cluster_reason
from tests.unit.operator.conftest import make_pool
from tests.unit.operator.test_core_types import BAD, EDGES
from tests.unit.operator.test_crd import EXAMPLES, INVALID, VALID
from tests.unit.operator.test_render import FULL
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
#: A group of this run's own: the cluster may be shared, and another run's
#: teardown deleting a fixed-name copy made every case of this one error.
GROUP = f"r{uuid.uuid4().hex[:8]}.validation-check.podsup.io"


pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(cluster_reason()), reason=str(cluster_reason()))]


def kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def crd_copy():
    crd = yaml.safe_load((ROOT / "crds" / "workerpools.podsup.io.yaml").read_text())
    crd["metadata"]["name"] = f"{crd['spec']['names']['plural']}.{GROUP}"
    crd["spec"]["group"] = GROUP
    crd["spec"]["names"].pop("shortNames", None)
    crd["spec"]["names"].pop("categories", None)
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(crd))
    # not `kubectl wait`: it errors instead of waiting while a new CRD has no status.conditions yet
    wait_for(lambda: any(c.get("type") == "Established" and c.get("status") == "True" for c in (json.loads(
        kubectl("get", "crd", crd["metadata"]["name"], "-o", "json").stdout).get("status") or {}).get(
        "conditions") or []), timeout=60, interval=0.5, message="the CRD copy to be established")
    yield
    kubectl("delete", "crd", crd["metadata"]["name"], "--wait=false", check=False)


def server_errors(pool: dict) -> list[str]:
    """The API server's problems with ``pool`` (server-side dry run, strict
    field validation as kubectl does by default)."""
    pool = {**json.loads(json.dumps(pool)), "apiVersion": f"{GROUP}/v1alpha1"}
    pool["metadata"] = {**pool["metadata"], "namespace": "default"}
    pool["metadata"].pop("uid", None)
    proc = kubectl("create", "--dry-run=server", "-o", "name", "-f", "-", input=json.dumps(pool), check=False)
    if proc.returncode == 0:
        return []
    err = proc.stderr.strip()
    strict = re.search(r"strict decoding error: (.*)$", err)
    if strict:
        return re.split(r", (?=unknown field)", strict.group(1))
    assert " is invalid: " in err, err
    body = err.split(" is invalid: ", 1)[1]
    lines = [line[2:] for line in body.splitlines() if line.startswith("* ")] or [body]
    return [re.sub(r'^<nil>: Invalid value: (null: |"": )?', "", line) for line in lines]


def offline_errors(pool: dict) -> list[str]:
    try:
        validate_workerpool(pool)
    except InvalidWorkerPool as exc:
        return exc.errors
    return []


CASES = ([(ident, spec) for ident, spec, _ in BAD] + [(f"cel: {message}", spec) for spec, message in INVALID]
         + [(f"valid {n}", spec) for n, spec in enumerate(VALID)])


@pytest.mark.parametrize("spec", [spec for _, spec in CASES], ids=[ident for ident, _ in CASES])
def test_render_and_the_api_server_report_the_same_problems(crd_copy, spec):
    pool = make_pool(spec, defaults=False, name="pool", namespace="default", uid=None)
    assert sorted(offline_errors(pool)) == sorted(server_errors(pool))


def test_the_accepted_pools_are_accepted_by_both(crd_copy):
    pools = [FULL, EDGES] + [d for p in EXAMPLES for d in yaml.safe_load_all(p.read_text()) if d]
    for pool in pools:
        assert offline_errors(pool) == [] and server_errors(pool) == [], pool["metadata"]["name"]
