"""Options of the start gate and of dynamic mode (issue 11): values, sources, combinations."""
from __future__ import annotations

import pytest

from podsup.cli.options import load
from podsup.core.config import ConfigError


def cfg(argv, env=None):
    return load(argv, env or {}, check_command=False)


def test_fixed_size_by_default_with_todays_start_rule():
    c = cfg(["--workers", "3", "--", "w"])
    assert not c.dynamic and c.max_workers == 0
    assert c.start_period == 1.0 and c.start_timeout == 60.0
    assert c.ready_needed(3) == 3


def test_max_workers_turns_dynamic_mode_on_and_workers_is_the_start_count():
    c = cfg(["--max-workers", "8", "--min-workers", "2", "--spare-workers", "3", "--idle-timeout", "5s",
             "--workers", "4", "--", "w"])
    assert c.dynamic and (c.max_workers, c.min_workers, c.spare_workers, c.idle_timeout, c.workers) == (8, 2, 3, 5.0, 4)


def test_dynamic_mode_readiness_needs_min_workers_not_all():
    c = cfg(["--max-workers", "8", "--min-workers", "2", "--workers", "2", "--", "w"])
    assert c.ready_needed(6) == 2 and c.ready_needed(1) == 1
    assert cfg(["--max-workers", "8", "--min-workers", "0", "--workers", "1", "--", "w"]).ready_needed(3) == 1
    assert cfg(["--max-workers", "8", "--min-ready", "4", "--workers", "2", "--", "w"]).ready_needed(6) == 4


def test_the_default_start_count_is_clamped_into_the_bounds():
    c = cfg(["--max-workers", "1", "--", "w"])  # the CPU count may be 2 or 64
    assert c.workers == 1
    c = cfg(["--max-workers", "1024", "--min-workers", "1000", "--", "w"])
    assert c.workers == 1000


def test_env_and_file_feed_the_new_options(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("max-workers: 6\nspare_workers: 2\nstart-timeout: 0\n")
    c = cfg(["--config", str(path), "--workers", "2", "--", "w"], {"PODSUP_IDLE_TIMEOUT": "1m",
                                                                    "PODSUP_START_PERIOD": "500ms"})
    assert (c.max_workers, c.spare_workers, c.start_timeout, c.idle_timeout, c.start_period) == (6, 2, 0.0, 60.0, 0.5)


BAD = [
    (["--max-workers", "2000", "--", "w"], {}, "invalid --max-workers '2000' (from --max-workers): must be an integer 0..1024"),
    (["--spare-workers", "0", "--max-workers", "4", "--", "w"], {}, "invalid --spare-workers '0'"),
    (["--idle-timeout", "-1", "--max-workers", "4", "--", "w"], {}, "invalid --idle-timeout '-1'"),
    (["--start-timeout", "soon", "--", "w"], {}, "invalid --start-timeout 'soon' (from --start-timeout): must be seconds"),
    (["--start-period", "-2", "--", "w"], {}, "invalid --start-period '-2'"),
    (["--min-workers", "2", "--", "w"], {}, "--min-workers 2 (from --min-workers) needs --max-workers N"),
    (["--", "w"], {"PODSUP_IDLE_TIMEOUT": "5"}, "--idle-timeout 5.0 (from env PODSUP_IDLE_TIMEOUT) needs --max-workers N"),
    (["--max-workers", "3", "--min-workers", "4", "--", "w"], {}, "invalid --min-workers 4 (from --min-workers): must be at most --max-workers 3"),
    (["--max-workers", "3", "--spare-workers", "4", "--", "w"], {}, "invalid --spare-workers 4 (from --spare-workers): must be at most --max-workers 3"),
    (["--max-workers", "4", "--workers", "6", "--", "w"], {}, "invalid --workers 6 (from --workers): in dynamic mode the start count must be within --min-workers 1 and --max-workers 4"),
    (["--max-workers", "4", "--min-workers", "2", "--workers", "1", "--", "w"], {}, "must be within --min-workers 2"),
    (["--max-workers", "4", "--normal-exit-codes", "0", "--", "w"], {}, "cannot be combined"),
]


@pytest.mark.parametrize("argv,env,message", BAD)
def test_bad_values_and_combinations_are_one_line(argv, env, message):
    with pytest.raises(ConfigError) as info:
        cfg(argv, env)
    assert message in str(info.value) and "\n" not in str(info.value)
