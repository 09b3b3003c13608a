"""Publish the flight-delay model to the models topic: the Helm chart's model Job.

    python -m examples.airline.publish [--model FILE] [--topic AirlineModels]

Without ``--model`` it trains one on the data file in the image first (examples.airline.train's
defaults). The cluster and its credentials come the way the service's do: ``FLUVIAL_CONFIG``
(a TOML file) and ``FLUVIAL_*`` variables (``FLUVIAL_BOOTSTRAP_SERVERS``,
``FLUVIAL_KAFKA_CONFIG``, docs/operations.md), so a Job next to the StatefulSet reuses its
Secret. The services swap to the published model between two batches; republishing an older
file is a rollback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from examples.airline.service import MODELS
from fluvial.errors import ConfigError, FluvialError


def model_bytes(path: Path | None) -> bytes:
    """The model file's bytes; without a path, a model trained now on the bundled data."""
    if path is not None:
        return path.read_bytes()
    from examples.airline.train import train

    return train().model.to_bytes()


def cluster_from_settings() -> Any:
    """Clients for the cluster the FLUVIAL_* settings name, with their security settings."""
    from fluvial.runtime.app import clients_for
    from fluvial.runtime.config import StreamsConfig

    config = StreamsConfig.create(os.environ.get("FLUVIAL_CONFIG"),
                                  defaults={"application_id": "airline-model-publisher"})
    if config.bootstrap_servers is None:
        raise ConfigError("no cluster to publish to: set FLUVIAL_BOOTSTRAP_SERVERS (or "
                          "bootstrap_servers in the FLUVIAL_CONFIG file)")
    return clients_for(config)


def main(argv: Sequence[str] | None = None, target: Any = None) -> int:
    """``target``: where to publish (default: the cluster of the FLUVIAL_* settings)."""
    from fluvial.ml import publish_model

    p = argparse.ArgumentParser(prog="python -m examples.airline.publish",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=None,
                   help="a fluvial model file (default: train one now)")
    p.add_argument("--topic", default=os.environ.get("FLUVIAL_AIRLINE_MODELS") or MODELS,
                   help="the models topic (default: $FLUVIAL_AIRLINE_MODELS or %(default)s)")
    args = p.parse_args(argv)
    try:
        data = model_bytes(args.model)
        info = publish_model(target if target is not None else cluster_from_settings(),
                             args.topic, data)
    except (FluvialError, OSError) as exc:  # one line in the Job's log, not a traceback
        print(f"publish: error: {exc}", file=sys.stderr)
        return 2
    print(f"published model {info.name!r} version {info.version} ({len(data):,} bytes) "
          f"to {args.topic}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
