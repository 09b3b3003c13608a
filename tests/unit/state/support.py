"""Helpers shared by the store tests."""

from __future__ import annotations


class Changelog:
    """What a store sent to its changelog partition, in order."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes | None, int]] = []

    def __call__(self, key: bytes, value: bytes | None, timestamp: int) -> None:
        self.records.append((key, value, timestamp))
