"""The programs each runner starts: the ceiling loop, the Quix and Faust apps (fluvial runs via
``python -m fluvial run``; Java Kafka Streams lives in bench/java)."""
