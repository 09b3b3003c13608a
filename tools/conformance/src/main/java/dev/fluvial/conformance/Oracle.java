package dev.fluvial.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.state.BuiltInDslStoreSuppliers;
import org.apache.kafka.streams.test.TestRecord;

/**
 * The conformance oracle: reads cases (one JSON object per line on stdin), runs each case's
 * topology in Kafka Streams' TopologyTestDriver, and prints one JSON line per case with the
 * records of each output topic in order (key and value as hex, or null; timestamp).
 *
 * One JVM serves every case, since starting one costs more than most cases. The case format
 * and the named functions are documented in docs/conformance.md; the topology itself is built
 * by {@link TopologyFromSpec} with the functions of {@link Functions}.
 */
public final class Oracle {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HexFormat HEX = HexFormat.of();

    private Oracle() {}

    public static void main(final String[] args) throws Exception {
        final PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        final BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            final JsonNode spec = JSON.readTree(line);
            ObjectNode result;
            try {
                result = run(spec);
            } catch (final Exception e) {
                result = JSON.createObjectNode();
                result.put("id", spec.path("id").asText());
                result.put("error", e.toString() + (e.getCause() == null ? "" : " caused by " + e.getCause()));
            }
            out.println(JSON.writeValueAsString(result));
            out.flush();
        }
    }

    static ObjectNode run(final JsonNode spec) {
        final StreamsBuilder builder = new StreamsBuilder();
        new TopologyFromSpec(builder).build(spec.get("topology"));
        final Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "conformance");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        // The record cache as the case says, on both sides. TopologyTestDriver commits (and
        // so flushes the cache) after every record either way, but a cache still changes what
        // is forwarded: old values come from the store, and a change absent before and
        // after is dropped.
        final boolean cached = spec.path("record_cache").asBoolean();
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, cached ? 10L * 1024 * 1024 : 0L);
        // Windows emitted on close are looked for after every record, as fluvial's
        // TestDriver does: the default throttles the search to once per second of a wall
        // clock that TopologyTestDriver does not move on its own.
        props.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION, 0L);
        // In-memory stores: a case's state is small, and opening RocksDB per case costs more
        // than running it; a key-value store's semantics do not depend on its backend.
        // A case may ask for Kafka Streams' default (RocksDB) stores where the backend shows:
        // an in-memory session store drops a session once it is older than the retention,
        // before an on-window-close aggregation has emitted it; RocksDB's time-ordered
        // store keeps it a segment longer.
        if (!spec.path("rocksdb").asBoolean()) {
            props.put(StreamsConfig.DSL_STORE_SUPPLIERS_CLASS_CONFIG,
                BuiltInDslStoreSuppliers.InMemoryDslStoreSuppliers.class);
        }
        // Stream-stream left/outer joins look for closed windows on every record, not once
        // per wall-clock second (its default): fluvial's TestDriver does so, and
        // TopologyTestDriver's wall clock does not move.
        props.put("__emit.interval.ms.kstreams.outer.join.spurious.results.fix__", 0L);
        final ObjectNode result = JSON.createObjectNode();
        result.put("id", spec.path("id").asText());
        try (TopologyTestDriver driver = new TopologyTestDriver(builder.build(), props)) {
            final Map<String, TestInputTopic<byte[], byte[]>> inputs = new HashMap<>();
            final Map<String, TestOutputTopic<byte[], byte[]>> outputs = new HashMap<>();
            for (final JsonNode topic : spec.get("outputs")) {
                outputs.put(topic.asText(), driver.createOutputTopic(topic.asText(),
                    new ByteArrayDeserializer(), new ByteArrayDeserializer()));
            }
            for (final JsonNode r : spec.get("inputs")) {
                final TestInputTopic<byte[], byte[]> topic = inputs.computeIfAbsent(r.get("topic").asText(),
                    name -> driver.createInputTopic(name, new ByteArraySerializer(), new ByteArraySerializer()));
                topic.pipeInput(new TestRecord<>(bytes(r.get("key")), bytes(r.get("value")),
                    new RecordHeaders(), r.get("ts").asLong()));
            }
            final ObjectNode byTopic = result.putObject("outputs");
            for (final Map.Entry<String, TestOutputTopic<byte[], byte[]>> e : outputs.entrySet()) {
                final ArrayNode records = byTopic.putArray(e.getKey());
                final List<TestRecord<byte[], byte[]>> read = e.getValue().readRecordsToList();
                for (final TestRecord<byte[], byte[]> r : read) {
                    final ObjectNode o = records.addObject();
                    o.put("key", r.key() == null ? null : HEX.formatHex(r.key()));
                    o.put("value", r.value() == null ? null : HEX.formatHex(r.value()));
                    o.put("ts", r.timestamp());
                }
            }
        }
        return result;
    }

    private static byte[] bytes(final JsonNode hex) {
        return hex == null || hex.isNull() ? null : HEX.parseHex(hex.asText());
    }
}
