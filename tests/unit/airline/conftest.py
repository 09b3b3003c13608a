"""A small model (a few thousand flights, few trees) shared by the airline service tests."""

from __future__ import annotations

import pytest
from examples.airline.flights import read_lines
from examples.airline.train import train

from fluvial.ml import LightGBMModel


@pytest.fixture(scope="session")
def flight_lines() -> list[str]:
    return read_lines()


@pytest.fixture(scope="session")
def service_model(flight_lines: list[str]) -> LightGBMModel:
    return train(flight_lines[:3000], seed=3, trees=10, num_leaves=15, threads=1,
                 trained_at="2024-01-01T00:00:00+00:00").model
