package dev.fluvial.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.Map;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Merger;
import org.apache.kafka.streams.kstream.SessionWindowedKStream;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindowedKStream;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The window and suppress operators of a case (docs/conformance.md): {@code windowed_by}
 * (time, sliding or session windows, with an emit strategy), the windowed aggregations, and
 * {@code suppress} on a table. tests/conformance/topology.py builds the same with fluvial.
 */
final class Windows {
    private Windows() {}

    static final Map<String, Merger<Object, Object>> MERGERS = Map.of(
        "sum", (k, a, b) -> (Long) a + (Long) b,
        "concat", (k, a, b) -> a + "|" + b);

    /** "time_windowed:SIZE": a time-windowed key of strings, windows of SIZE ms. */
    static Serde<?> keySerde(final String name) {
        if (name.startsWith("time_windowed:")) {
            return WindowedSerdes.timeWindowedSerdeFrom(String.class,
                Long.parseLong(name.substring("time_windowed:".length())));
        }
        throw new IllegalArgumentException("unknown serde " + name);
    }

    static boolean isWindowed(final Object current) {
        return current instanceof TimeWindowedKStream<?, ?> || current instanceof SessionWindowedKStream<?, ?>;
    }

    static Object windowedBy(final KGroupedStream<Object, Object> grouped, final JsonNode op) {
        final JsonNode w = op.get("windows");
        final Duration grace = Duration.ofMillis(w.get("grace").asLong());
        final EmitStrategy emit = "close".equals(op.path("emit").asText())
            ? EmitStrategy.onWindowClose() : EmitStrategy.onWindowUpdate();
        return switch (w.get("kind").asText()) {
            case "time" -> grouped.windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(w.get("size").asLong()), grace)
                .advanceBy(Duration.ofMillis(w.get("advance").asLong()))).emitStrategy(emit);
            case "sliding" -> grouped.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(
                Duration.ofMillis(w.get("difference").asLong()), grace)).emitStrategy(emit);
            case "session" -> grouped.windowedBy(SessionWindows.ofInactivityGapAndGrace(
                Duration.ofMillis(w.get("gap").asLong()), grace)).emitStrategy(emit);
            default -> throw new IllegalArgumentException("unknown windows " + w);
        };
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    static Object aggregate(final Object current, final String name, final String fn, final JsonNode op) {
        final Materialized m = op.hasNonNull("store") ? Materialized.as(op.get("store").asText())
            : Materialized.with(null, null);
        m.withKeySerde(TopologyFromSpec.serde(op.get("key_serde")))
            .withValueSerde(TopologyFromSpec.serde(op.get("value_serde")));
        if (op.has("retention")) {
            m.withRetention(Duration.ofMillis(op.get("retention").asLong()));
        }
        if (current instanceof TimeWindowedKStream<?, ?> t) {
            final TimeWindowedKStream<Object, Object> w = (TimeWindowedKStream<Object, Object>) t;
            final Materialized<Object, Object, WindowStore<Bytes, byte[]>> wm = m;
            return switch (name) {
                case "count" -> w.count((Materialized) wm);
                case "reduce" -> w.reduce(Functions.named(Functions.REDUCERS, fn, "reducer"), wm);
                case "aggregate" -> w.aggregate(Functions.named(Functions.INITIALIZERS, op.get("init").asText(), "initializer"),
                    Functions.named(Functions.AGGREGATORS, fn, "aggregator"), wm);
                default -> throw new IllegalArgumentException("a windowed stream has no operator " + name);
            };
        }
        final SessionWindowedKStream<Object, Object> s = (SessionWindowedKStream<Object, Object>) current;
        final Materialized<Object, Object, SessionStore<Bytes, byte[]>> sm = m;
        return switch (name) {
            case "count" -> s.count((Materialized) sm);
            case "reduce" -> s.reduce(Functions.named(Functions.REDUCERS, fn, "reducer"), sm);
            case "aggregate" -> s.aggregate(Functions.named(Functions.INITIALIZERS, op.get("init").asText(), "initializer"),
                Functions.named(Functions.AGGREGATORS, fn, "aggregator"),
                Functions.named(MERGERS, op.get("merger").asText(), "merger"), sm);
            default -> throw new IllegalArgumentException("a session-windowed stream has no operator " + name);
        };
    }

    /**
     * {"until": "window_close"} or {"until": "time_limit", "limit": ms}, with a buffer of
     * {"max_records": n} and/or {"max_bytes": b} (none: unbounded) and "full": "emit" or
     * "shut_down".
     */
    @SuppressWarnings({"unchecked", "rawtypes"})
    static Suppressed suppressed(final JsonNode op) {
        final JsonNode b = op.path("buffer");
        Suppressed.BufferConfig buffer = Suppressed.BufferConfig.unbounded();
        if (b.has("max_records") || b.has("max_bytes")) {
            buffer = b.has("max_records") ? Suppressed.BufferConfig.maxRecords(b.get("max_records").asLong())
                : Suppressed.BufferConfig.maxBytes(b.get("max_bytes").asLong());
            if (b.has("max_records") && b.has("max_bytes")) {
                buffer = buffer.withMaxBytes(b.get("max_bytes").asLong());
            }
            buffer = "shut_down".equals(op.path("full").asText()) ? buffer.shutDownWhenFull()
                : buffer.emitEarlyWhenFull();
        }
        final Suppressed s = "window_close".equals(op.get("until").asText())
            ? Suppressed.untilWindowCloses((Suppressed.StrictBufferConfig) buffer)
            : Suppressed.untilTimeLimit(Duration.ofMillis(op.get("limit").asLong()), buffer);
        return op.hasNonNull("name") ? s.withName(op.get("name").asText()) : s;
    }
}
