"""The only layer that knows a Kafka client: confluent-kafka, the embedded broker, admin, serdes."""
