"""Bad input to a real ``podsup run``: exit 2 and one clear line, never a traceback."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.integration.podsup_process import REPO, worker

SLEEPER = [sys.executable, worker("sleeper")]


def podsup(args, env=None, cwd=None):
    full_env = {**os.environ, "PYTHONPATH": REPO, **(env or {})}
    return subprocess.run([sys.executable, "-m", "podsup", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or REPO, timeout=60)


CASES = [
    # (id, args, env, text the single line must contain)
    ("unknown flag", ["run", "--wokers", "2", "--", *SLEEPER], {}, "unrecognized arguments: --wokers"),
    ("negative count", ["run", "--workers", "-1", "--", *SLEEPER], {}, "--workers '-1' (from --workers): must be an integer 0..1024"),
    ("not a number", ["run", "--workers", "many", "--", *SLEEPER], {}, "--workers 'many' (from --workers): must be an integer 0..1024"),
    ("unknown signal", ["run", "--stop-signal", "SIGFOO", "--", *SLEEPER], {}, "--stop-signal 'SIGFOO' (from --stop-signal): must be a signal name"),
    ("command not executable", ["run", "--", "/nonexistent/worker"], {}, "COMMAND '/nonexistent/worker' cannot be executed"),
    ("command not on PATH", ["run", "--", "no-such-program-podsup"], {}, "COMMAND 'no-such-program-podsup' cannot be executed"),
    ("no command", ["run", "--workers", "1"], {}, "missing the worker command"),
    ("bad env value", ["run", "--", *SLEEPER], {"PODSUP_GRACEFUL_TIMEOUT": "soon"}, "--graceful-timeout 'soon' (from env PODSUP_GRACEFUL_TIMEOUT): must be seconds >= 0"),
    ("bad log format", ["run", "--log-format", "xml", "--", *SLEEPER], {}, "--log-format 'xml' (from --log-format): must be one of: text, json"),
    ("bad exit codes", ["run", "--normal-exit-codes", "0,300", "--", *SLEEPER], {}, "exit codes 0..255"),
    ("bad http", ["run", "--http", "localhost", "--", *SLEEPER], {}, "--http 'localhost' (from --http): must be ADDR:PORT"),
    ("bad max-rss", ["run", "--max-rss", "lots", "--", *SLEEPER], {}, "--max-rss 'lots' (from --max-rss): must be bytes"),
    ("bad queue", ["run", "--queue", "kafka://x", "--", *SLEEPER], {}, "--queue 'kafka://x' (from --queue): must be a URL redis://"),
    ("preload and command", ["run", "--preload", "a:b", "--", *SLEEPER], {}, "either a COMMAND after -- or --preload"),
    ("preload missing module", ["run", "--preload", "no_such_module_podsup:main"], {}, "--preload 'no_such_module_podsup:main': cannot import 'no_such_module_podsup'"),
    ("preload bad spec", ["run", "--preload", "justamodule"], {}, "--preload 'justamodule' (from --preload): must be MODULE:FUNC"),
    ("unknown subcommand", ["frobnicate"], {}, "unknown subcommand 'frobnicate'"),
]


@pytest.mark.parametrize("args,env,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_clear_line(args, env, expected):
    result = podsup(args, env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_bad_config_file_key_and_yaml(tmp_path):
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text("workers: 2\ngracefull-timeout: 3\n")
    result = podsup(["run", "--config", str(bad_key), "--", *SLEEPER])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown key 'gracefull-timeout'" in result.stderr and "graceful-timeout" in result.stderr
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("workers: [1,\n")
    result = podsup(["run", "--config", str(not_yaml), "--", *SLEEPER])
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr
    bad_value = tmp_path / "value.yaml"
    bad_value.write_text("crashloop-threshold: -3\n")
    result = podsup(["run", "--config", str(bad_value), "--", *SLEEPER])
    assert result.returncode == 2
    assert f"--crashloop-threshold -3 (from config file {bad_value}): must be an integer >= 0" in result.stderr.replace("'-3'", "-3")


def test_help_lists_every_option_with_its_env_name():
    result = podsup(["run", "--help"])
    assert result.returncode == 0
    from podsup.cli.options import OPTIONS
    for option in OPTIONS:
        assert option.flag in result.stdout and option.env in result.stdout


def test_a_preload_module_that_exits_or_is_interrupted_at_import(tmp_path):
    (tmp_path / "exits_at_import.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "interrupted_import.py").write_text("raise KeyboardInterrupt\n")  # Ctrl-C during a slow import
    result = podsup(["run", "--preload", "exits_at_import:main"], cwd=str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("podsup run: invalid --preload 'exits_at_import:main': "
                                     "importing 'exits_at_import' called sys.exit(0)")
    result = podsup(["run", "--preload", "interrupted_import:main"], cwd=str(tmp_path))
    assert result.returncode == 130 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "podsup run: interrupted while starting; nothing was started"


def test_a_worker_group_left_by_a_crashed_worker_is_stopped(tmp_path):
    """A shell worker starts a background job and crashes: the job belongs to
    the dead worker's process group and is stopped, not left to outlive podsup."""
    import signal

    import psutil

    from tests.integration.podsup_process import PodsupProcess
    from tests.waiting import wait_for

    marker = str(700000 + os.getpid() % 100000)  # a sleep length nothing else on the machine uses
    script = f"sleep {marker} & sleep 0.3; exit 1"
    with PodsupProcess(["run", "--workers", "1", "--graceful-timeout", "5", "--", "sh", "-c", script]) as p:
        p.wait_for_line(r"process group outlived it: stop signal sent")

        def leftovers():
            return [q for q in psutil.process_iter(["cmdline"]) if q.info["cmdline"] == ["sleep", marker]]
        # each crashed worker's `sleep` is stopped (TERM) soon after; at most the live worker's one remains
        wait_for(lambda: len(leftovers()) <= 1, 30, message=lambda: f"leftovers stopped: {leftovers()}")
        p.signal(signal.SIGTERM)
        p.wait_exit(60)
    wait_for(lambda: not leftovers(), 30, message="no leftover outlives podsup")


def test_a_script_whose_interpreter_is_missing_stops_start_up_with_one_line(tmp_path):
    from tests.integration.podsup_process import PodsupProcess

    script = tmp_path / "worker.sh"
    script.write_text("#!/nonexistent/interpreter\necho never\n")
    script.chmod(0o755)
    with PodsupProcess(["run", "--workers", "1", "--", str(script)]) as p:
        assert p.wait_exit(30) == 2  # it could only ever crash-loop
        err = [t for s, t in p.lines if s == "stderr"]
    assert len(err) == 1 and "#! interpreter /nonexistent/interpreter does not exist" in err[0], err


def test_an_interpreter_gone_after_start_up_is_named_with_a_hint(tmp_path):
    import shutil

    from tests.integration.podsup_process import PodsupProcess

    interpreter = tmp_path / "mysh"
    shutil.copy("/bin/sh", interpreter)
    script = tmp_path / "worker.sh"
    script.write_text(f"#!{interpreter}\necho started\nexec sleep 300\n")
    script.chmod(0o755)
    with PodsupProcess(["run", "--workers", "1", "--", str(script)]) as p:
        p.wait_for_line(r"^\[worker 0\] started$")
        interpreter.unlink()  # e.g. a volume unmounted under a running pod
        pid = int(p.wait_for_line(r"worker started slot=0 pid=(\d+)").group(1))
        os.kill(pid, signal.SIGKILL)
        line = p.wait_for_line(r".*cannot start worker.*").group(0)
        assert f"command={script}" in line and "#! interpreter" in line and "respawn_in=" in line