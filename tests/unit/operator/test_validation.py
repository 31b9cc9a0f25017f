"""OpenAPI part of the offline validator: the API server's wording."""
from __future__ import annotations

import pytest

from podsup_operator.validation import RULES_NOT_CHECKED, InvalidWorkerPool, validate_workerpool

from .conftest import make_pool


def errors_of(spec: dict, **kw) -> list[str]:
    with pytest.raises(InvalidWorkerPool) as info:
        validate_workerpool(make_pool(spec, defaults=False, **kw))
    return info.value.errors


def test_bounds():
    assert errors_of({"processes": 0}) == [
        "spec.processes: Invalid value: 0: spec.processes in body should be greater than or equal to 1"]
    assert errors_of({"supervisor": {"metricsPort": 70000}}) == [
        "spec.supervisor.metricsPort: Invalid value: 70000: spec.supervisor.metricsPort in body should be "
        "less than or equal to 65535"]


def test_types():
    assert errors_of({"processes": "four"}) == [
        'spec.processes: Invalid value: "string": spec.processes in body must be of type integer: "string"',
        RULES_NOT_CHECKED]
    assert errors_of({"disruption": {"minAvailable": [1]}})[0].startswith(
        "spec.disruption.minAvailable: Invalid value:")


def test_enum():
    assert errors_of({"queue": {"type": "kafka", "name": "q", "url": "kafka://k"}}) == [
        'spec.queue.type: Unsupported value: "kafka": supported values: "redis", "amqp"', RULES_NOT_CHECKED]


def test_required_and_unknown_fields():
    pool = make_pool({}, defaults=False)
    del pool["spec"]["image"]
    pool["spec"]["imagee"] = "typo"
    with pytest.raises(InvalidWorkerPool) as info:
        validate_workerpool(pool)
    # kubectl's strict field validation refuses an unknown field alone, before the schema
    assert info.value.errors == ['unknown field "spec.imagee"']
    del pool["spec"]["imagee"]
    with pytest.raises(InvalidWorkerPool) as info:
        validate_workerpool(pool)
    assert info.value.errors == ["spec.image: Required value", RULES_NOT_CHECKED]


def test_rules_run_alongside_value_errors_but_not_after_blocking_ones():
    """As a 1.36 API server answered: a bound or pattern error leaves the CEL
    rules running; a wrong type, a missing field, an enum or a length bound
    stops them, and the output says some rules were not checked."""
    assert errors_of({"processes": 0, "disruption": {}}) == [
        "spec.processes: Invalid value: 0: spec.processes in body should be greater than or equal to 1",
        "spec.disruption: Invalid value: exactly one of disruption.minAvailable and disruption.maxUnavailable "
        "must be set"]
    assert errors_of({"pod": {"labels": {"a": "x" * 64}}, "disruption": {}}) == [
        "spec.pod.labels.a: Too long: may not be more than 63 bytes", RULES_NOT_CHECKED]


def test_pattern_and_length():
    assert errors_of({"supervisor": {"maxRss": "lots"}})[0].startswith(
        'spec.supervisor.maxRss: Invalid value: "lots": spec.supervisor.maxRss in body should match')
    assert errors_of({"command": []}) == [
        "spec.command: Invalid value: 0: spec.command in body should have at least 1 items"]


def test_duplicate_port_names():
    errs = errors_of({"ports": [{"name": "a", "containerPort": 1}, {"name": "a", "containerPort": 2}]})
    assert errs == ['spec.ports[1]: Duplicate value: {"name":"a"}']


def test_volume_sources_left_to_the_api_server_accept_anything_structured():
    validate_workerpool(make_pool({"pod": {"volumes": [{"name": "x", "csi": {"driver": "d", "anything": [1, 2]}}]}},
                                  defaults=False))


def test_int_or_string_bounds_and_patterns_apply_by_type():
    assert errors_of({"disruption": {"minAvailable": -1}}) == [
        "spec.disruption.minAvailable: Invalid value: -1: spec.disruption.minAvailable in body should be greater "
        "than or equal to 0"]
    assert errors_of({"disruption": {"minAvailable": "50"}})[0].startswith(
        'spec.disruption.minAvailable: Invalid value: "50": spec.disruption.minAvailable in body should match')
    validate_workerpool(make_pool({"disruption": {"minAvailable": "100%"}}, defaults=False))


def test_max_properties():
    requests = {f"example.com/r{i}": "1" for i in range(17)}
    assert errors_of({"resources": {"requests": requests}}) == [
        "spec.resources.requests: Too many: 17: must have at most 16 items", RULES_NOT_CHECKED]


def test_wrong_kind_and_missing_name():
    with pytest.raises(InvalidWorkerPool, match="expected podsup.io/v1alpha1/WorkerPool"):
        validate_workerpool({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}})
    with pytest.raises(InvalidWorkerPool, match="metadata.name: Required value"):
        validate_workerpool({"apiVersion": "podsup.io/v1alpha1", "kind": "WorkerPool", "metadata": {}})


def test_message_names_the_pool_like_kubectl():
    with pytest.raises(InvalidWorkerPool) as info:
        validate_workerpool(make_pool({"processes": 0}, name="jobs", defaults=False))
    assert str(info.value) == ('The WorkerPool "jobs" is invalid: spec.processes: Invalid value: 0: '
                               'spec.processes in body should be greater than or equal to 1')
    with pytest.raises(InvalidWorkerPool) as info:
        validate_workerpool(make_pool({"processes": 0, "replicas": -1}, name="jobs", defaults=False))
    assert str(info.value).splitlines()[0] == 'The WorkerPool "jobs" is invalid:'
