"""The cluster spec: typed model, YAML validation, JSON form and revisions."""

from controller.spec.model import (
    ClusterSpec,
    HealthSpec,
    Override,
    ServiceSpec,
    SessionsSpec,
    Settings,
)

__all__ = ["ClusterSpec", "HealthSpec", "Override", "ServiceSpec", "SessionsSpec", "Settings"]
