"""The other Kubernetes resources of an evaluator, as plain data: Service,
HorizontalPodAutoscaler, PodDisruptionBudget and NetworkPolicy, next to the Deployment
(``_deployment``), and the patch that lets the code rewards' sandbox run.
"""

from __future__ import annotations

from typing import Any

from ._deployment import (
    CLIENT_LABEL,
    CONTAINER,
    PORT,
    KubernetesInputs,
    deployment,
    metadata_of,
    port_name,
    selector_of,
)

__all__ = [
    "CLIENT_LABEL",
    "KubernetesInputs",
    "disruption_budget",
    "network_policy",
    "resources",
    "sandbox_patch",
]


def _service(inputs: KubernetesInputs) -> dict[str, Any]:
    name = port_name(inputs)
    number = 443 if name == "https" else 80
    port = {"name": name, "port": number, "targetPort": name, "protocol": "TCP"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata_of(inputs),
        "spec": {"type": "ClusterIP", "selector": selector_of(inputs), "ports": [port]},
    }


def _autoscaler(inputs: KubernetesInputs) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata_of(inputs),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": inputs.name},
            "minReplicas": inputs.min_replicas,
            "maxReplicas": inputs.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": inputs.target_cpu_percent,
                        },
                    },
                }
            ],
            # Training steps come in bursts: scale up at once, down only after 5 quiet minutes.
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0},
                "scaleDown": {"stabilizationWindowSeconds": 300},
            },
        },
    }


def disruption_budget(inputs: KubernetesInputs) -> dict[str, Any]:
    """At most one pod down at a time for node drains and upgrades."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata_of(inputs),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_of(inputs)}},
    }


def network_policy(inputs: KubernetesInputs) -> dict[str, Any]:
    """In: only pods labelled ``reward-kit/client: <name>`` (any namespace), on the server's
    port. Out: DNS, and HTTPS (443) outside the cluster's private ranges, for Google's and
    AWS's token checks and an LLM judge; nothing else (not the cloud metadata server on port
    80). The kubelet's probes come from the node, which policies do not block."""
    private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    dns = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata_of(inputs),
        "spec": {
            "podSelector": {"matchLabels": selector_of(inputs)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {},
                            "podSelector": {"matchLabels": {CLIENT_LABEL: inputs.name}},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": PORT}],
                }
            ],
            "egress": [
                {"ports": dns},
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": private}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                },
            ],
        },
    }


def resources(inputs: KubernetesInputs) -> dict[str, dict[str, Any]]:
    """Every resource, by the file it goes to."""
    return {
        "deployment.yaml": deployment(inputs),
        "service.yaml": _service(inputs),
        "hpa.yaml": _autoscaler(inputs),
        "pdb.yaml": disruption_budget(inputs),
        "networkpolicy.yaml": network_policy(inputs),
    }


def sandbox_patch() -> dict[str, Any]:
    """A strategic-merge patch of the Deployment that lets bubblewrap build the code rewards'
    sandbox: its own user namespace (``hostUsers: false``), an unmasked ``/proc`` for the
    sandbox's fresh proc mount, and no seccomp or AppArmor filter refusing namespaces. The
    restricted and baseline Pod Security levels both refuse an Unconfined seccomp profile."""
    return {
        "spec": {
            "template": {
                "spec": {
                    "hostUsers": False,
                    "securityContext": {
                        "seccompProfile": {"type": "Unconfined"},
                        "appArmorProfile": {"type": "Unconfined"},
                    },
                    "containers": [
                        {
                            "name": CONTAINER,
                            "securityContext": {
                                "procMount": "Unmasked",
                                "seccompProfile": {"type": "Unconfined"},
                                "appArmorProfile": {"type": "Unconfined"},
                            },
                        }
                    ],
                }
            }
        }
    }
