"""WorkerPool fields of issue 11: dynamicProcesses, the start gate and the crash-storm
liveness delay — CRD rules, podsup flags and the HPA's busy metric."""
from __future__ import annotations

import pytest

from podsup import names
from podsup.cli.options import load
from podsup_operator.builders.hpa import build_hpa
from podsup_operator.validation import InvalidWorkerPool, validate_workerpool

from .conftest import flag, flags, make_pool


DYNAMIC = {"min": 2, "max": 8, "spare": 1, "idleTimeoutSeconds": 30}


def test_dynamic_processes_become_podsup_dynamic_mode_flags_podsup_accepts():
    pool = make_pool({"processes": 3, "dynamicProcesses": DYNAMIC})
    assert [flag(pool, f) for f in ("--workers", "--min-workers", "--max-workers", "--spare-workers",
                                    "--idle-timeout")] == ["3", "2", "8", "1", "30"]
    config = load(flags(pool) + ["--", "w"], {}, check_command=False)
    assert config.dynamic and (config.min_workers, config.max_workers, config.workers) == (2, 8, 3)


@pytest.mark.parametrize("processes,start", [(1, "2"), (20, "8")])
def test_the_start_count_is_clamped_into_the_bounds(processes, start):
    pool = make_pool({"processes": processes, "dynamicProcesses": DYNAMIC})
    assert flag(pool, "--workers") == start
    load(flags(pool) + ["--", "w"], {}, check_command=False)  # podsup takes it


def test_a_fixed_size_pool_gets_no_dynamic_flag():
    args = flags(make_pool({"processes": 4}))
    assert "--max-workers" not in args and "--min-workers" not in args


@pytest.mark.parametrize("field,value,flag_name", [
    ("startTimeoutSeconds", 120, "--start-timeout"),
    ("startTimeoutSeconds", 0, "--start-timeout"),
    ("startPeriodSeconds", 5, "--start-period"),
    ("crashloopRestartAfterSeconds", 600, "--crashloop-restart-after"),
])
def test_start_gate_and_crash_storm_fields_become_flags(field, value, flag_name):
    pool = make_pool({"supervisor": {field: value}})
    assert flag(pool, flag_name) == str(value)
    load(flags(pool) + ["--", "w"], {}, check_command=False)


def busy_metric(spec: dict) -> str:
    hpa = build_hpa(make_pool({"autoscaling": {"enabled": True, "maxReplicas": 5,
                                               "targets": {"busyWorkersPercent": 75}}, **spec}))
    (metric,) = hpa["spec"]["metrics"]
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "750m"}
    return metric["pods"]["metric"]["name"]


def test_the_hpa_busy_target_reads_pool_saturation_when_dynamic_busy_ratio_otherwise():
    assert busy_metric({"dynamicProcesses": DYNAMIC}) == names.METRIC_POOL_SATURATION
    assert busy_metric({}) == names.METRIC_BUSY_RATIO


@pytest.mark.parametrize("spec", [
    {"dynamicProcesses": {"max": 4}},
    {"dynamicProcesses": {"min": 4, "max": 4, "spare": 4}},
    {"processes": 2, "dynamicProcesses": DYNAMIC, "supervisor": {"startTimeoutSeconds": 0}},
])
def test_cel_accepts_valid_dynamic_pools(spec):
    validate_workerpool(make_pool(spec, defaults=False))


@pytest.mark.parametrize("spec,message", [
    ({"dynamicProcesses": {"min": 5, "max": 4}},
     "dynamicProcesses.min must be less than or equal to dynamicProcesses.max"),
    ({"dynamicProcesses": {"max": 2, "spare": 3}},
     "dynamicProcesses.spare must be less than or equal to dynamicProcesses.max"),
    ({"dynamicProcesses": {"max": 2}, "supervisor": {"normalExitCodes": [0]}},
     "dynamicProcesses and supervisor.normalExitCodes (job mode) cannot be combined"),
    ({"dynamicProcesses": {"min": 1}}, "dynamicProcesses.max"),
])
def test_cel_refuses_invalid_dynamic_pools_with_its_message(spec, message):
    with pytest.raises(InvalidWorkerPool) as info:
        validate_workerpool(make_pool(spec, defaults=False))
    assert any(message in e for e in info.value.errors), info.value.errors
