"""The chart installs and upgrades the canonical CRD as a template
(templates/workerpool-crd.yaml over files/crds/), like cert-manager: the
rendered CRD is crds/ unchanged but for labels and the keep annotation."""
from __future__ import annotations

import yaml

from podsup import names
from tests.chart.conftest import CHART, render

ROOT = CHART.parents[1]
CRD = "workerpools.podsup.io.yaml"
KEEP = "helm.sh/resource-policy"


def canonical() -> dict:
    return yaml.safe_load((ROOT / "crds" / CRD).read_text())


def rendered_crds(values=None) -> list[dict]:
    return [o for o in render(values) if o["kind"] == "CustomResourceDefinition"]


def test_chart_crd_file_is_a_byte_copy_of_crds():
    canonical_bytes = (ROOT / "crds" / CRD).read_bytes()
    shipped = (CHART / "files" / "crds" / CRD).read_bytes()
    assert shipped == canonical_bytes, (
        f"charts/podsup-operator/files/crds/{CRD} differs from crds/{CRD}: "
        f"cp crds/{CRD} charts/podsup-operator/files/crds/")


def test_chart_ships_exactly_the_canonical_crds():
    assert sorted(p.name for p in (CHART / "files" / "crds").iterdir()) == \
        sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))


def test_no_crds_directory_helm_would_install_once_and_never_upgrade():
    assert not (CHART / "crds").exists()


def test_templated_crd_equals_crds_but_for_labels_and_keep_annotation():
    (crd,) = rendered_crds()
    crd.pop("__template__")
    meta = crd["metadata"]
    labels = meta.pop("labels")
    annotations = meta.pop("annotations")
    want = canonical()
    want_meta = want["metadata"]
    assert labels == {**labels, **(want_meta.pop("labels", None) or {})}
    assert annotations == {**(want_meta.pop("annotations", None) or {}), KEEP: "keep"}
    assert labels["app.kubernetes.io/managed-by"] == "Helm"
    assert crd == want  # every schema field, CEL rule, number and string intact


def test_crd_keep_is_optional_and_crds_can_be_left_out():
    (crd,) = rendered_crds({"crds": {"keep": False}})
    assert KEEP not in (crd["metadata"].get("annotations") or {})
    assert rendered_crds({"crds": {"enabled": False}}) == []


def test_crd_is_the_workerpool_kind_the_rbac_grants():
    crd = canonical()
    assert crd["metadata"]["name"] == f"{names.PLURAL}.{names.API_GROUP}"
    assert crd["spec"]["group"] == names.API_GROUP
    assert crd["spec"]["names"]["plural"] == names.PLURAL
    assert crd["spec"]["scope"] == "Namespaced"
    assert "wp" in crd["spec"]["names"].get("shortNames", [])
