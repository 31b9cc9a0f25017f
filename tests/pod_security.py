"""The Pod Security Standards' `restricted` profile as a function over a pod
spec, for tests (no well-kept Python library implements it; the reference is
Kubernetes' own Go package k8s.io/pod-security-admission).

Every check below is one control of the official definition, version
"latest" (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
named as there; `restricted` includes every `baseline` control. A violation
is returned as "control: where: what", so a failing test says which rule a
rendered pod breaks. tests/chart/test_pod_security.py checks that each
control catches what it should, and cross-checks with a real API server's
PodSecurity admission when $KUBECONFIG names one.
"""
from __future__ import annotations

from typing import Any, Iterator

# Baseline "Capabilities": what may be added (and restricted allows only the last one).
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
RESTRICTED_CAPS = {"NET_BIND_SERVICE"}
# Baseline "Sysctls": the safe set.
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
# Baseline "SELinux": allowed types (user and role must be unset).
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# Restricted "Volume Types": the only volume sources allowed.
VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                "projected", "secret", "image"}
SECCOMP_OK = {"RuntimeDefault", "Localhost"}


def containers(pod: dict) -> Iterator[tuple[str, dict]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in pod.get(field) or []:
            yield f"{field}[{c.get('name')}]", c


def restricted_violations(pod: dict, annotations: dict | None = None) -> list[str]:
    """Violations of `restricted` (baseline included) by a core/v1 PodSpec
    (and the pod's annotations, for AppArmor)."""
    out: list[str] = []
    psc: dict[str, Any] = pod.get("securityContext") or {}
    ctrs = list(containers(pod))

    # --- baseline -------------------------------------------------------
    for where, sc in [("pod", psc)] + [(w, c.get("securityContext") or {}) for w, c in ctrs]:
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append(f"HostProcess: {where}: windowsOptions.hostProcess")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            out.append(f"Host Namespaces: pod: {field}")
    for where, c in ctrs:
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"Privileged Containers: {where}: privileged")
        added = set((sc.get("capabilities") or {}).get("add") or [])
        if added - BASELINE_CAPS:
            out.append(f"Capabilities: {where}: adds {sorted(added - BASELINE_CAPS)}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"Host Ports: {where}: hostPort {port['hostPort']}")
        if sc.get("procMount", "Default") != "Default":
            out.append(f"/proc Mount Type: {where}: procMount {sc['procMount']}")
    for v in pod.get("volumes") or []:
        if "hostPath" in v:
            out.append(f"HostPath Volumes: volume {v.get('name')}")
    for key, value in (annotations or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and \
                value != "runtime/default" and not value.startswith("localhost/"):
            out.append(f"AppArmor: annotation {key}={value}")
    for where, sc in [("pod", psc)] + [(w, c.get("securityContext") or {}) for w, c in ctrs]:
        apparmor = (sc.get("appArmorProfile") or {}).get("type")
        if apparmor is not None and apparmor not in {"RuntimeDefault", "Localhost"}:
            out.append(f"AppArmor: {where}: appArmorProfile {apparmor}")
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            out.append(f"SELinux: {where}: seLinuxOptions {selinux}")
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            out.append(f"Seccomp: {where}: Unconfined")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            out.append(f"Sysctls: pod: {sysctl.get('name')}")

    # --- restricted -----------------------------------------------------
    for v in pod.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= VOLUME_TYPES:
            out.append(f"Volume Types: volume {v.get('name')}: {sorted(kinds - VOLUME_TYPES)}")
    for where, c in ctrs:
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"Privilege Escalation: {where}: allowPrivilegeEscalation must be false")
    pod_nonroot = psc.get("runAsNonRoot") is True
    for where, c in ctrs:
        nonroot = (c.get("securityContext") or {}).get("runAsNonRoot")
        if nonroot is False or (nonroot is None and not pod_nonroot):
            out.append(f"Running as Non-root: {where}: runAsNonRoot must be true (pod or container)")
    for where, sc in [("pod", psc)] + [(w, c.get("securityContext") or {}) for w, c in ctrs]:
        if sc.get("runAsUser") == 0:
            out.append(f"Running as Non-root user: {where}: runAsUser 0")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    for where, c in ctrs:
        own = ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
        if (own or pod_seccomp) not in SECCOMP_OK:
            out.append(f"Seccomp: {where}: seccompProfile.type must be RuntimeDefault or Localhost")
    for where, c in ctrs:
        caps = (c.get("securityContext") or {}).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"Capabilities: {where}: must drop ALL")
        added = set(caps.get("add") or []) - RESTRICTED_CAPS
        if added:
            out.append(f"Capabilities: {where}: may add only NET_BIND_SERVICE, adds {sorted(added)}")
    return out


def pod_specs(obj: dict) -> Iterator[tuple[dict, dict]]:
    """(pod spec, pod annotations) of a Pod or of a workload's pod template."""
    if obj.get("kind") == "Pod":
        yield obj.get("spec") or {}, (obj.get("metadata") or {}).get("annotations") or {}
        return
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template")
    if isinstance(template, dict) and "spec" in template:
        yield template["spec"], (template.get("metadata") or {}).get("annotations") or {}
