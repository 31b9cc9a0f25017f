"""Python workers counting with prometheus-client: podsup provides the
multiprocess directory, marks dead workers, and merges their metrics into its
own /metrics — counts survive respawns, live gauges of dead workers vanish."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

from podsup.plugins.multiproc import ENV_MULTIPROC_DIR
from tests.integration.podsup_process import PodsupProcess, worker
from tests.integration.servers import http_get, scrape
from tests.waiting import wait_for

PER_LIFE = 5


def test_worker_metrics_merged_across_respawns():
    with PodsupProcess(["run", "--workers", "2", "--backoff-max", "0.2", "--crashloop-threshold", "0",
                        "--", sys.executable, worker("metrics_worker")],
                       env={"JOBS_PER_LIFE": str(PER_LIFE), "JOB_SECONDS": "0.02"}) as p:
        directory = wait_for(lambda: next((c.environ().get(ENV_MULTIPROC_DIR) for c in p.children()), None),
                             timeout=30, message="a worker with PROMETHEUS_MULTIPROC_DIR")
        assert os.path.isdir(directory)

        def after_respawns():
            got = scrape(p.http_port)
            lives = got.get(("podsup_worker_exits_total", (("code", "3"), ("kind", "exit"))), 0)
            return got if lives >= 4 else None
        got = wait_for(after_respawns, timeout=90, message=lambda: f"4 finished lives; {p.output()[-2000:]}")
        lives = got[("podsup_worker_exits_total", (("code", "3"), ("kind", "exit")))]
        # every finished life did exactly PER_LIFE jobs; their counts are still there
        assert got[("app_jobs_total", ())] >= PER_LIFE * lives
        # exited lives were folded into one file per type: the directory does not grow with respawns
        counters = [f for f in os.listdir(directory) if f.startswith("counter_")]
        assert "counter_0.db" in counters and len(counters) <= 1 + 2, counters
        # podsup's own count of done reports agrees with the workers' counter (give or take jobs in
        # flight). Within one scrape podsup's counter is read before the workers' files, while the
        # workers go on (50 jobs/s each), and reports wait in the socket while the loop is busy: so
        # the two agree at some scrape, not necessarily at this one. A lost or double count would
        # make them drift apart for good.
        counts: list[float] = []

        def agreeing():
            now = scrape(p.http_port)
            counts[:] = [now[("podsup_requests_total", ())], now[("app_jobs_total", ())]]
            return abs(counts[0] - counts[1]) <= 2 * 2
        wait_for(agreeing, timeout=30, interval=0.1,
                 message=lambda: f"podsup_requests_total and app_jobs_total to agree (last: {counts})")
        # one livesum gauge per live process: dead workers were marked dead
        alive = wait_for(lambda: (lambda g: g if g in (1.0, 2.0) else None)(
            scrape(p.http_port).get(("app_workers_alive", ()))), timeout=30, message="app_workers_alive <= 2")
        assert alive <= 2
        body = http_get(p.http_port, "/metrics")[1]
        assert "# TYPE podsup_workers gauge" in body and "# TYPE app_jobs_total counter" in body
        p.signal(signal.SIGTERM)
        assert p.wait_exit(timeout=60) == 0
    assert not os.path.exists(directory)  # removed when podsup exited


def podsup_dirs(root) -> set:
    return {d for d in root.iterdir() if d.name.startswith("podsup-") and d.is_dir()}


def test_the_dirs_of_a_sigkilled_podsup_are_swept_by_the_next(tmp_path):
    env = {"TMPDIR": str(tmp_path)}
    with PodsupProcess(["run", "--workers", "1", "--", sys.executable, worker("metrics_worker")], env=env) as p:
        left = wait_for(lambda: (lambda d: d if len(d) == 2 else None)(podsup_dirs(tmp_path)), timeout=30,
                        message="the report and multiprocess directories")
        p.signal(signal.SIGKILL)
        p.wait_exit(timeout=30)
    assert all(d.exists() for d in left)  # nobody removed them
    with PodsupProcess(["run", "--workers", "1", "--", sys.executable, worker("metrics_worker")], env=env) as p:
        fresh = wait_for(lambda: (lambda d: d if len(d) == 2 and not d & left else None)(podsup_dirs(tmp_path)),
                         timeout=30, message=lambda: f"only the new podsup's directories; {podsup_dirs(tmp_path)}")
        p.signal(signal.SIGTERM)
        assert p.wait_exit(timeout=60) == 0
    assert not any(d.exists() for d in fresh)


def test_a_preset_multiproc_dir_is_used_and_kept(tmp_path):
    preset = tmp_path / "prom"
    with PodsupProcess(["run", "--workers", "2", "--", sys.executable, worker("metrics_worker")],
                       env={ENV_MULTIPROC_DIR: str(preset), "JOB_SECONDS": "0.02"}) as p:
        assert wait_for(lambda: next((c.environ().get(ENV_MULTIPROC_DIR) for c in p.children()), None),
                        timeout=30, message="a worker's multiprocess dir") == str(preset)
        wait_for(lambda: (lambda g: g.get(("app_jobs_total", ()), 0) > 0 and g.get(("podsup_requests_total", ()), 0) > 0)(
            scrape(p.http_port)), timeout=60, message="worker and podsup counts")
        body = http_get(p.http_port, "/metrics")[1]
        # podsup's own counters went multiprocess too (the variable is in its environment): exported once
        for family in ("podsup_requests_total counter", "podsup_request_duration_seconds histogram",
                       "app_jobs_total counter"):
            assert body.count(f"# TYPE {family}\n") == 1, body
        if shutil.which("promtool"):
            check = subprocess.run(["promtool", "check", "metrics"], input=body.encode(), capture_output=True)
            assert check.returncode == 0, check.stdout + check.stderr
        p.signal(signal.SIGTERM)
        assert p.wait_exit(timeout=60) == 0
    assert preset.is_dir()  # the user's directory is kept


def test_an_unusable_preset_multiproc_dir_is_one_line(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    with PodsupProcess(["run", "--workers", "1", "--", sys.executable, worker("metrics_worker")],
                       env={ENV_MULTIPROC_DIR: str(afile)}) as p:
        assert p.wait_exit(timeout=30) == 2
        lines = [text for _, text in p.lines if text.strip()]
        assert lines == [f"podsup run: invalid PROMETHEUS_MULTIPROC_DIR={afile}: not a directory"]


SHORT_LIVED_GAUGE_WORKER = """\
import os, sys, time
from prometheus_client import Counter, Gauge
Gauge("app_started_at", "When this worker process started.").set(time.time())  # default mode: "all"
Counter("app_lives", "Worker lives.").inc()
time.sleep(float(os.environ.get("LIFE_SECONDS", "0.1")))
sys.exit(3)
"""


def test_default_mode_gauges_of_exited_workers_do_not_pile_up(tmp_path):
    """A Gauge in prometheus-client's default multiprocess mode ("all") writes
    gauge_all_<pid>.db and exports one pid-labelled series per process; every
    respawn used to leave one more file and one more series."""
    script = tmp_path / "short_lived.py"
    script.write_text(SHORT_LIVED_GAUGE_WORKER)
    workers, slack = 2, 2
    preset = tmp_path / "prom"  # a known directory, to count its files while podsup runs
    with PodsupProcess(["run", "--workers", str(workers), "--backoff-max", "0.1", "--crashloop-threshold", "0",
                        "--", sys.executable, str(script)],
                       env={ENV_MULTIPROC_DIR: str(preset), "LIFE_SECONDS": "0.1"}) as p:
        most = {"files": 0, "series": 0}
        files: list[str] = []
        series: list[tuple] = []

        def observe():
            files[:] = sorted(f for f in os.listdir(preset) if f.startswith("gauge_all_"))
            got = scrape(p.http_port)
            series[:] = [labels for (name, labels) in got if name == "app_started_at"]
            assert all(dict(labels).keys() == {"pid"} for labels in series), series
            most["files"] = max(most["files"], len(files))
            most["series"] = max(most["series"], len(series))
            exits = got.get(("podsup_worker_exits_total", (("code", "3"), ("kind", "exit"))), 0)
            return got if exits >= 30 and most["series"] > 0 else None
        got = wait_for(observe, timeout=120, interval=0.05,
                       message=lambda: f"30 short lives ({most}); {p.output()[-2000:]}")
        # at most one file and one series per worker alive (a replacement may start before the exit is seen)
        assert most["files"] <= workers + slack, f"gauge_all files pile up: {files}"
        assert most["series"] <= workers + slack, f"pid-labelled series pile up: {series}"
        assert got[("app_lives_total", ())] >= 30  # the counters of those lives are all still counted
        p.signal(signal.SIGTERM)
        assert p.wait_exit(timeout=60) == 0


SHORT_LIVED_MODES_WORKER = """\
import os, sys, time
from prometheus_client import Counter, Gauge
started = time.time()
Gauge("app_lives_gauge", "Worker lives (a sum gauge).", multiprocess_mode="sum").inc()
Counter("app_lives", "Worker lives.").inc()
Gauge("app_first_start", "Earliest worker start.", multiprocess_mode="min").set(started)
Gauge("app_last_start", "Latest worker start.", multiprocess_mode="max").set(started)
Gauge("app_latest_start", "Latest worker start (by write time).", multiprocess_mode="mostrecent").set(started)
time.sleep(float(os.environ.get("LIFE_SECONDS", "0.1")))
sys.exit(3)
"""


def test_min_max_sum_mostrecent_gauges_of_exited_workers_fold_into_one_file(tmp_path):
    """Gauges in the modes whose merge drops the pid label left one
    gauge_<mode>_<pid>.db per life; their values must survive the folding."""
    script = tmp_path / "short_lived_modes.py"
    script.write_text(SHORT_LIVED_MODES_WORKER)
    workers, slack = 2, 2
    preset = tmp_path / "prom"
    modes = ("sum", "min", "max", "mostrecent")
    with PodsupProcess(["run", "--workers", str(workers), "--backoff-max", "0.1", "--crashloop-threshold", "0",
                        "--", sys.executable, str(script)],
                       env={ENV_MULTIPROC_DIR: str(preset), "LIFE_SECONDS": "0.1"}) as p:
        most = dict.fromkeys(modes, 0)
        seen: list[dict] = []

        def observe():
            names = os.listdir(preset)
            for mode in modes:
                most[mode] = max(most[mode], sum(1 for n in names if n.startswith(f"gauge_{mode}_")))
            got = scrape(p.http_port)
            if ("app_first_start", ()) in got and ("app_lives_gauge", ()) in got:
                seen.append(got)
            exits = got.get(("podsup_worker_exits_total", (("code", "3"), ("kind", "exit"))), 0)
            return got if exits >= 30 and len(seen) >= 2 else None
        got = wait_for(observe, timeout=120, interval=0.05,
                       message=lambda: f"30 short lives ({most}); {p.output()[-2000:]}")
        # one folded file per mode plus at most one per worker alive
        assert all(n <= 1 + workers + slack for n in most.values()), f"gauge files pile up: {most}"
        # every life's inc is still summed (give or take lives that started but did not write both yet)
        assert abs(got[("app_lives_gauge", ())] - got[("app_lives_total", ())]) <= workers
        assert got[("app_lives_gauge", ())] >= 30
        # min never rises, max never falls: dead lives' values are kept through the folding
        firsts = [g[("app_first_start", ())] for g in seen]
        lasts = [g[("app_last_start", ())] for g in seen]
        assert firsts == sorted(firsts, reverse=True) and lasts == sorted(lasts), (firsts, lasts)
        assert firsts[-1] < lasts[-1] and firsts[-1] <= got[("app_latest_start", ())] <= lasts[-1]
        p.signal(signal.SIGTERM)
        assert p.wait_exit(timeout=60) == 0
