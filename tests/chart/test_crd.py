"""The chart ships the canonical CRD unchanged."""
from __future__ import annotations

import yaml

from podsup import names
from tests.chart.conftest import CHART

ROOT = CHART.parents[1]
CRD = "workerpools.podsup.io.yaml"


def test_chart_crd_is_a_byte_copy_of_crds():
    canonical = (ROOT / "crds" / CRD).read_bytes()
    shipped = (CHART / "crds" / CRD).read_bytes()
    assert shipped == canonical, (
        f"charts/podsup-operator/crds/{CRD} differs from crds/{CRD}: "
        f"cp crds/{CRD} charts/podsup-operator/crds/")


def test_chart_ships_exactly_the_canonical_crds():
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))


def test_crd_is_the_workerpool_kind_the_rbac_grants():
    crd = yaml.safe_load((CHART / "crds" / CRD).read_text())
    assert crd["metadata"]["name"] == f"{names.PLURAL}.{names.API_GROUP}"
    assert crd["spec"]["group"] == names.API_GROUP
    assert crd["spec"]["names"]["plural"] == names.PLURAL
    assert crd["spec"]["scope"] == "Namespaced"
    assert "wp" in crd["spec"]["names"].get("shortNames", [])
