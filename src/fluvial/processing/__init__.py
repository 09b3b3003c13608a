"""Operators that run a batch of records, and the Task that runs a sub-topology for a partition.

Nothing here imports a Kafka client: a task sees raw messages in, and an output collector.
"""
