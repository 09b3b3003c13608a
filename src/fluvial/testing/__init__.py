"""Testing without a broker: the TestDriver (like Kafka Streams' TopologyTestDriver)."""

from fluvial.testing.driver import TestDriver, TestInputTopic, TestOutputTopic, TestRecord

__all__ = ["TestDriver", "TestInputTopic", "TestOutputTopic", "TestRecord"]
