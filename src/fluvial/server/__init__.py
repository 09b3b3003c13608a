"""An HTTP server per instance: liveness, readiness and Prometheus metrics."""

from fluvial.server.http import AppServer

__all__ = ["AppServer"]
