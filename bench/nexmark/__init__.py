"""Nexmark on fluvial (issue 14): the online-auction event generator and the queries.

``generator`` makes the Person/Auction/Bid stream by the Nexmark generator's rules, seeded and
deterministic; ``queries`` holds each query as a fluvial topology beside a plain-Python
reference; ``check`` compares a run's output with the reference; ``sink`` writes events to
Kafka or to a JSON-lines file. ``python -m bench.nexmark --help`` runs them (README.md).
"""
