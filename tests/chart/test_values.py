"""values.yaml and values.schema.json: every key documented and typed, bad
values refused by Helm with a message naming the key."""
from __future__ import annotations

import json
import re

import pytest

from tests.chart.conftest import CHART, default_values, helm

SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def leaf_paths(values, prefix=()):
    """Key paths of values.yaml, descending into maps that the schema
    describes property by property (free-form maps such as resources are
    one value)."""
    for key, value in values.items():
        path = prefix + (key,)
        yield path
        node = schema_node(path)
        if isinstance(value, dict) and value and "properties" in node:
            yield from leaf_paths(value, path)


def schema_node(path):
    node = SCHEMA
    for key in path:
        node = node.get("properties", {}).get(key)
        if node is None:
            return None
    return node


def test_every_values_key_is_in_the_schema():
    missing = [".".join(p) for p in leaf_paths(default_values()) if schema_node(p) is None]
    assert missing == []


def test_every_schema_property_has_a_default_in_values():
    values = default_values()

    def walk(node, path):
        for key, child in node.get("properties", {}).items():
            if path == () and key == "global":
                continue
            here = path + (key,)
            cursor = values
            for part in here:
                assert isinstance(cursor, dict) and part in cursor, f"{'.'.join(here)} has no default in values.yaml"
                cursor = cursor[part]
            walk(child, here)

    walk(SCHEMA, ())


def test_every_values_key_has_a_comment():
    """Each key line of values.yaml is directly preceded by a comment line
    (or is a plain item of a documented list/map default)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    documented_parents: list[tuple[int, bool]] = []  # (indent, is free-form default)
    undocumented = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z0-9_.\-]+):", line)
        if not m or line.lstrip().startswith("#") or line.lstrip().startswith("-"):
            continue
        indent = len(m.group(1))
        while documented_parents and documented_parents[-1][0] >= indent:
            documented_parents.pop()
        path = [key for key in _path_at(lines, i)]
        node = schema_node(tuple(path))
        inside_free_form = any(free for _, free in documented_parents)
        if not inside_free_form:
            prev = lines[i - 1].strip() if i else ""
            if not prev.startswith("#"):
                undocumented.append(".".join(path))
        documented_parents.append((indent, node is None or "properties" not in node))
    assert undocumented == []


def _path_at(lines, index):
    path = []
    indent = len(lines[index]) - len(lines[index].lstrip())
    path.append(lines[index].strip().split(":")[0])
    for line in reversed(lines[:index]):
        if not line.strip() or line.lstrip().startswith("#") or line.lstrip().startswith("-"):
            continue
        this = len(line) - len(line.lstrip())
        if this < indent:
            path.insert(0, line.strip().split(":")[0])
            indent = this
    return path


def test_defaults_pass_the_schema():
    assert helm("validate", CHART, json.dumps({})) == {"valid": True, "error": None}


BAD = [
    ({"operator": {"logFormat": "xml"}}, "logFormat"),
    ({"operator": {"watchNamespaces": ["Team_A"]}}, "watchNamespaces"),
    ({"operator": {"watchNamespaces": ["a", "a"]}}, "watchNamespaces"),
    ({"operator": {"watchNamespaces": "team-a"}}, "watchNamespaces"),
    ({"image": {"digest": "latest"}}, "digest"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"replicaCount": 0}, "replicaCount"),
    ({"service": {"port": 70000}}, "port"),
    ({"operator": {"livenessProbe": {"periodSeconds": 0}}}, "periodSeconds"),
    ({"serviceMonitor": {"interval": "often"}}, "interval"),
    ({"imagePullSecrets": ["regcred"]}, "imagePullSecrets"),
    ({"rbac": {"create": "yes"}}, "create"),
]


@pytest.mark.parametrize("values,key", BAD, ids=[k for _, k in BAD])
def test_schema_refuses_bad_values_naming_the_key(values, key):
    result = helm("validate", CHART, json.dumps(values))
    assert result["valid"] is False
    assert key in result["error"], result["error"]


def test_ci_scenarios_use_only_known_keys():
    from tests.chart.conftest import SCENARIOS, scenario_values
    for path in SCENARIOS:
        assert helm("validate", CHART, json.dumps(scenario_values(path)))["valid"], path.name
