"""The loop that runs a topology on Kafka: poll, route to tasks, process, produce, commit."""
