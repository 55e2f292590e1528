"""The Deployment of an evaluator on Kubernetes, as plain data, and what every resource shares.

The pod meets the ``restricted`` Pod Security Standard: non-root (uid 10001, as the image),
read-only root filesystem with an ``emptyDir`` on ``/tmp`` (the worker pool's fork server and
Python's temporary files), no privilege escalation, every capability dropped, the runtime's
default seccomp profile, no service-account token. Keys and certificates come from Secrets the
operator creates (``kubectl create secret``), mounted as files: nothing secret is in here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..._version import __version__

__all__ = [
    "CLIENT_LABEL",
    "CONTAINER",
    "PORT",
    "KubernetesInputs",
    "deployment",
    "metadata_of",
    "port_name",
    "selector_of",
]

CONTAINER = "evaluator"
PORT = 8080  # the image's $PORT
UID = 10001  # the image's user
KEYS_DIR = "/run/secrets/rk"
TLS_DIR = "/run/secrets/rk-tls"
# Seconds the pod keeps serving after it was told to stop, while its endpoint is removed from
# the Service (kube-proxy and the HPA learn of it asynchronously): no request lands on a
# server that already stopped accepting.
PRE_STOP_SECONDS = 5
CLIENT_LABEL = "reward-kit/client"


@dataclass(frozen=True, kw_only=True)
class KubernetesInputs:
    """What varies between generated manifests.

    ``shutdown_grace`` is the server's ``--shutdown-grace``; the pod's
    ``terminationGracePeriodSeconds`` covers the pre-stop pause, that grace, and the worker
    pool's own stop. ``cpu`` is whole cores, so ``RK_WORKERS`` matches what the pod may use
    (inside a container the server sees the node's cores, not its limit).
    """

    name: str
    image: str
    auth: str
    shutdown_grace: float
    cpu: int = 2
    memory: str = "2Gi"
    min_replicas: int = 2
    max_replicas: int = 10
    target_cpu_percent: int = 70

    @property
    def secrets(self) -> dict[str, str]:
        """The Secrets the pod mounts, by name, and what each holds."""
        if self.auth == "api-key":
            return {f"{self.name}-api-keys": "api_keys: the servers' key file (hash lines)"}
        if self.auth == "mtls":
            return {
                f"{self.name}-tls": "tls.crt, tls.key (server), ca.crt (signs clients), "
                "probe.crt, probe.key (a client certificate for the pod's own health probes)"
            }
        return {}

    @property
    def termination_grace(self) -> int:
        return PRE_STOP_SECONDS + math.ceil(self.shutdown_grace) + 5


def labels_of(inputs: KubernetesInputs) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": inputs.name,
        "app.kubernetes.io/part-of": "reward-kit",
        "app.kubernetes.io/version": __version__,
        "app.kubernetes.io/managed-by": "rk-build",
    }


def selector_of(inputs: KubernetesInputs) -> dict[str, str]:
    return {"app.kubernetes.io/name": inputs.name}


def metadata_of(inputs: KubernetesInputs) -> dict[str, Any]:
    return {"name": inputs.name, "labels": labels_of(inputs)}


def _environment(inputs: KubernetesInputs) -> list[dict[str, Any]]:
    env = {
        "RK_WORKERS": str(inputs.cpu),
        "RK_SHUTDOWN_GRACE": f"{inputs.shutdown_grace:g}",
        "RK_LOG_FORMAT": "json",
    }
    if inputs.auth == "api-key":
        env["RK_API_KEYS_FILE"] = f"{KEYS_DIR}/api_keys"
    elif inputs.auth == "mtls":
        env |= {
            "RK_SSL_CERTFILE": f"{TLS_DIR}/tls.crt",
            "RK_SSL_KEYFILE": f"{TLS_DIR}/tls.key",
            "RK_SSL_CA_CERTS": f"{TLS_DIR}/ca.crt",
        }
    elif inputs.auth == "none":
        # The kubelet's probes and the Service reach the pod by IP and name, not loopback;
        # the NetworkPolicy (and what is in front) decides who gets here.
        env["RK_ALLOWED_HOSTS"] = "*"
    return [{"name": key, "value": value} for key, value in env.items()]


def port_name(inputs: KubernetesInputs) -> str:
    return "https" if inputs.auth == "mtls" else "http"


def _probe(inputs: KubernetesInputs, **timing: int) -> dict[str, Any]:
    if inputs.auth == "mtls":
        # The server requires a client certificate in the handshake, which the kubelet's
        # HTTPS probe cannot present: the probe runs in the pod with its own certificate.
        script = (
            "import ssl, urllib.request as u; "
            f"c = ssl.create_default_context(cafile='{TLS_DIR}/ca.crt'); "
            "c.check_hostname = False; "
            f"c.load_cert_chain('{TLS_DIR}/probe.crt', '{TLS_DIR}/probe.key'); "
            f"u.urlopen('https://127.0.0.1:{PORT}/health', context=c, timeout=4)"
        )
        action: dict[str, Any] = {"exec": {"command": ["python", "-c", script]}}
    else:
        action = {"httpGet": {"path": "/health", "port": "http"}}
    return {**action, "timeoutSeconds": 5, **timing}


def _volumes(inputs: KubernetesInputs) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    directory = KEYS_DIR if inputs.auth == "api-key" else TLS_DIR
    for secret in inputs.secrets:
        # 0440 with fsGroup: readable by the server's group, by nobody else.
        volumes.append({"name": "secrets", "secret": {"secretName": secret, "defaultMode": 288}})
        mounts.append({"name": "secrets", "mountPath": directory, "readOnly": True})
    return volumes, mounts


def deployment(inputs: KubernetesInputs) -> dict[str, Any]:
    """The Deployment; its replica count is the HorizontalPodAutoscaler's to set."""
    volumes, mounts = _volumes(inputs)
    container = {
        "name": CONTAINER,
        "image": inputs.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": port_name(inputs), "containerPort": PORT, "protocol": "TCP"}],
        "env": _environment(inputs),
        # Settings that are not secret (RK_TIMEOUT, RK_GOOGLE_AUDIENCES...), if given.
        "envFrom": [{"configMapRef": {"name": f"{inputs.name}-settings", "optional": True}}],
        "resources": {
            "requests": {"cpu": str(inputs.cpu), "memory": inputs.memory},
            "limits": {"cpu": str(inputs.cpu), "memory": inputs.memory},
        },
        "startupProbe": _probe(inputs, periodSeconds=2, failureThreshold=60),
        "readinessProbe": _probe(inputs, periodSeconds=5, failureThreshold=2),
        "livenessProbe": _probe(inputs, periodSeconds=10, failureThreshold=3),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata_of(inputs),
        "spec": {
            "selector": {"matchLabels": selector_of(inputs)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": labels_of(inputs)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": inputs.termination_grace,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": UID,
                        "runAsGroup": UID,
                        "fsGroup": UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector_of(inputs)},
                        }
                    ],
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
