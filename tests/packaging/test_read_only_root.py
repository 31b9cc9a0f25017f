"""`readOnlyRootFilesystem: true` works: the standalone binary unpacks itself
into /tmp and podsup's control and report sockets live there, so the operator
mounts an emptyDir at /tmp for such a pool. Here the rendered pod is played
out for real: a private mount and network namespace (`unshare`) whose root is
remounted read-only, a tmpfs for each emptyDir the worker container mounts,
the binary copied into the bin volume as the init container does, and the
worker container's exact command run as the pod's UID."""
from __future__ import annotations

import copy
import shlex
import shutil
import subprocess

import pytest

from podsup import names

pytestmark = pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("setpriv"),
                                reason="needs unshare and setpriv (util-linux)")

POOL = {
    "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}", "kind": names.KIND,
    "metadata": {"name": "ro", "namespace": "default"},
    "spec": {"image": "debian:12-slim", "command": ["sh", "-c", "echo worker $PODSUP_WORKER_ID ran; exit 0"],
             "processes": 2, "supervisor": {"normalExitCodes": [0]},
             "pod": {"containerSecurityContext": {"readOnlyRootFilesystem": True}}},
}


def rendered_pod(pool: dict) -> dict:
    from podsup_operator.builders import build_deployment
    from podsup_operator.crd import workerpool_schema
    from podsup_operator.validation import apply_defaults

    return build_deployment(apply_defaults(copy.deepcopy(pool), workerpool_schema()), "op:test")["spec"]["template"]


def play(binary, pod: dict, mount_emptydirs: bool) -> subprocess.CompletedProcess:
    """Run the worker container of ``pod`` under a read-only root."""
    spec = pod["spec"]
    worker = spec["containers"][0]
    emptydirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    uid = spec["securityContext"]["runAsUser"]
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    script = ["set -e", "mount --make-rprivate /", "mount -o remount,bind,ro /",
              "if touch /podsup-ro-check 2>/dev/null; then echo root is writable >&2; exit 99; fi"]
    for mount in worker["volumeMounts"]:
        if mount["name"] not in emptydirs:
            continue
        if mount["mountPath"] == names.SHARED_BIN_DIR:
            # The bin emptyDir: the read-only root has no such directory, so
            # it stands on /mnt (hidden in this namespace only), and the
            # init container's copy is made before anything covers /tmp.
            script += ["mount -t tmpfs -o mode=1777 podsup-bin /mnt", f"cp {shlex.quote(str(binary))} /mnt/podsup"]
        elif mount_emptydirs:
            script.append(f"mount -t tmpfs -o mode=1777 {mount['name']} {shlex.quote(mount['mountPath'])}")
    command = list(worker["command"])
    assert command[0] == f"{names.SHARED_BIN_DIR}/podsup"
    command[0] = "/mnt/podsup"
    script.append(f"exec setpriv --reuid {uid} --regid {uid} --clear-groups -- {shlex.join(command)}")
    return subprocess.run(["unshare", "--mount", "--net", "sh", "-c", "\n".join(script)],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"})


def test_binary_runs_its_workers_under_a_read_only_root_with_the_rendered_tmp(podsup_binary):
    pod = rendered_pod(POOL)
    assert "/tmp" in {m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    proc = play(podsup_binary, pod, mount_emptydirs=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"[worker 0] worker 0 ran", "[worker 1] worker 1 ran"} <= set(proc.stdout.splitlines())
    assert "all workers done" in proc.stderr


def test_without_the_tmp_emptydir_the_binary_cannot_start(podsup_binary):
    """The control: the same run with /tmp left read-only fails, so the test
    above proves the emptyDir is what makes it work."""
    proc = play(podsup_binary, rendered_pod(POOL), mount_emptydirs=False)
    assert proc.returncode not in (0, 99), proc.stdout + proc.stderr
    assert "worker 0 ran" not in proc.stdout
    assert "temporary directory" in proc.stderr  # the bootloader's unpacking into /tmp
