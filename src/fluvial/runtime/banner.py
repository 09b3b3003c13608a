"""The one line an instance logs when it starts: what it is, where it reads and writes."""

from __future__ import annotations

import os
import socket

from fluvial.runtime.config import StreamsConfig
from fluvial.runtime.topics import output_topics
from fluvial.topology.topology import Topology


def instance_name() -> str:
    """``host/pid``: tells apart the instances of one application in shared logs."""
    return f"{socket.gethostname()}/{os.getpid()}"


def banner(config: StreamsConfig, topology: Topology, broker: str,
           http_port: int | None) -> str:
    inputs = ", ".join(sorted(set(topology.external_source_topics()))) or "-"
    outputs = ", ".join(output_topics(topology)) or "-"
    return (f"{config.application_id} running: instance {instance_name()}, broker {broker}, "
            f"input {inputs}, output {outputs}, "
            f"state {(config.state_dir / config.application_id).absolute()}, "
            f"HTTP {'port ' + str(http_port) if http_port is not None else 'off'}, "
            f"{config.processing_guarantee.value}")
