package dev.fluvial.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.BranchedKStream;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KGroupedTable;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.KeyValueMapper;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.ValueJoiner;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Builds a case's topology with the Kafka Streams DSL. The spec is a list of chains; each
 * starts at a source (or at an earlier chain's result, by name) and applies its operators in
 * order. tests/conformance/topology.py builds the same spec with fluvial's DSL.
 */
final class TopologyFromSpec {
    private final StreamsBuilder builder;
    private final Map<String, Object> named = new HashMap<>();

    TopologyFromSpec(final StreamsBuilder builder) {
        this.builder = builder;
    }

    @SuppressWarnings("unchecked")
    static Serde<Object> serde(final JsonNode name) {
        return (Serde<Object>) (Serde<?>) switch (name.asText()) {
            case "string" -> Serdes.String();
            case "long" -> Serdes.Long();
            case "session_windowed" -> WindowedSerdes.sessionWindowedSerdeFrom(String.class);
            default -> Windows.keySerde(name.asText());
        };
    }

    private static Materialized<Object, Object, KeyValueStore<Bytes, byte[]>> materialized(final JsonNode op) {
        final Materialized<Object, Object, KeyValueStore<Bytes, byte[]>> m = op.hasNonNull("store")
            ? Materialized.as(op.get("store").asText()) : Materialized.with(null, null);
        return m.withKeySerde(serde(op.get("key_serde"))).withValueSerde(serde(op.get("value_serde")));
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Materialized<Object, Long, KeyValueStore<Bytes, byte[]>> countMaterialized(final JsonNode op) {
        return (Materialized) materialized(op);
    }

    void build(final JsonNode chains) {
        for (final JsonNode chain : chains) {
            Object current = start(chain.get("start"));
            for (final JsonNode op : chain.get("ops")) {
                current = apply(current, op);
            }
            if (chain.hasNonNull("name")) {
                named.put(chain.get("name").asText(), current);
            }
        }
    }

    private Object start(final JsonNode start) {
        if (start.isTextual()) {
            return named.get(start.asText());
        }
        final Consumed<Object, Object> consumed = Consumed.with(serde(start.get("key_serde")), serde(start.get("value_serde")));
        if (start.has("stream")) {
            return builder.stream(start.get("stream").asText(), consumed);
        }
        if (start.has("global_table")) {
            return builder.globalTable(start.get("global_table").asText(), consumed);
        }
        if (start.hasNonNull("store")) {
            return builder.table(start.get("table").asText(), consumed, materialized(start));
        }
        return builder.table(start.get("table").asText(), consumed);
    }

    @SuppressWarnings("unchecked")
    private Object apply(final Object current, final JsonNode op) {
        final String name = op.get("op").asText();
        final String fn = op.path("fn").asText();
        if (current instanceof List<?> branches) {
            if (!name.equals("branch")) {
                throw new IllegalArgumentException("a split has no operator " + name + "; take a branch first");
            }
            return branches.get(op.get("index").asInt());
        }
        if (current instanceof KStream<?, ?> s) {
            return stream((KStream<Object, Object>) s, name, fn, op);
        }
        if (current instanceof KTable<?, ?> t) {
            return table((KTable<Object, Object>) t, name, fn, op);
        }
        if (current instanceof KGroupedStream<?, ?> g && name.equals("windowed_by")) {
            return Windows.windowedBy((KGroupedStream<Object, Object>) g, op);
        }
        if (Windows.isWindowed(current)) {
            return Windows.aggregate(current, name, fn, op);
        }
        if (current instanceof KGroupedStream<?, ?> g) {
            final KGroupedStream<Object, Object> grouped = (KGroupedStream<Object, Object>) g;
            return switch (name) {
                case "count" -> grouped.count(countMaterialized(op));
                case "reduce" -> grouped.reduce(Functions.named(Functions.REDUCERS, fn, "reducer"), materialized(op));
                case "aggregate" -> grouped.aggregate(Functions.named(Functions.INITIALIZERS, op.get("init").asText(), "initializer"),
                    Functions.named(Functions.AGGREGATORS, fn, "aggregator"), materialized(op));
                default -> throw new IllegalArgumentException("a grouped stream has no operator " + name);
            };
        }
        if (current instanceof KGroupedTable<?, ?> g) {
            final KGroupedTable<Object, Object> grouped = (KGroupedTable<Object, Object>) g;
            final String sub = op.path("sub").asText();
            return switch (name) {
                case "count" -> grouped.count(countMaterialized(op));
                case "reduce" -> grouped.reduce(Functions.named(Functions.REDUCERS, fn, "reducer"),
                    Functions.named(Functions.REDUCERS, sub, "reducer"), materialized(op));
                case "aggregate" -> grouped.aggregate(Functions.named(Functions.INITIALIZERS, op.get("init").asText(), "initializer"),
                    Functions.named(Functions.AGGREGATORS, fn, "aggregator"),
                    Functions.named(Functions.AGGREGATORS, sub, "aggregator"), materialized(op));
                default -> throw new IllegalArgumentException("a grouped table has no operator " + name);
            };
        }
        throw new IllegalArgumentException("operator " + name + " after the end of a chain");
    }

    @SuppressWarnings("unchecked")
    private Object stream(final KStream<Object, Object> s, final String name, final String fn, final JsonNode op) {
        return switch (name) {
            case "filter" -> s.filter(Functions.named(Functions.PREDICATES, fn, "predicate"));
            case "filter_not" -> s.filterNot(Functions.named(Functions.PREDICATES, fn, "predicate"));
            case "map_values" -> s.mapValues(Functions.named(Functions.VALUE_MAPPERS, fn, "value mapper"));
            case "map" -> s.map(Functions.named(Functions.PAIR_MAPPERS, fn, "pair mapper"));
            case "select_key" -> s.selectKey(Functions.named(Functions.KEY_SELECTORS, fn, "key selector"));
            case "flat_map_values" -> s.flatMapValues(Functions.named(Functions.FLAT_VALUE_MAPPERS, fn, "flat value mapper"));
            case "flat_map" -> s.flatMap(Functions.named(Functions.FLAT_MAPPERS, fn, "flat mapper"));
            case "merge" -> s.merge((KStream<Object, Object>) named.get(op.get("with").asText()));
            case "to" -> {
                s.to(op.get("topic").asText(), Produced.with(serde(op.get("key_serde")), serde(op.get("value_serde"))));
                yield s;
            }
            case "to_table" -> s.toTable(materialized(op));
            case "peek" -> s.peek((k, v) -> { });
            case "repartition" -> s.repartition(Repartitioned.with(serde(op.get("key_serde")), serde(op.get("value_serde"))));
            case "split" -> split(s, op);
            case "group_by_key" -> s.groupByKey(Grouped.with(serde(op.get("key_serde")), serde(op.get("value_serde"))));
            case "group_by" -> s.groupBy(Functions.named(Functions.KEY_SELECTORS, fn, "key selector"),
                Grouped.with(serde(op.get("key_serde")), serde(op.get("value_serde"))));
            case "join", "left_join", "join_key" -> streamJoin(s, name, fn, op);
            case "stream_join", "stream_left_join", "stream_outer_join" -> streamStreamJoin(s, name, fn, op);
            default -> throw new IllegalArgumentException("a stream has no operator " + name);
        };
    }

    // -- joins -------------------------------------------------------------------------

    /** A stream-stream join with the stream named by "with", in join windows of "before"/"after"
     *  ms and "grace" ms; the stores written with "key_serde", "value_serde", "other_value_serde". */
    @SuppressWarnings("unchecked")
    private Object streamStreamJoin(final KStream<Object, Object> s, final String name, final String fn, final JsonNode op) {
        final KStream<Object, Object> other = (KStream<Object, Object>) named.get(op.get("with").asText());
        final ValueJoiner<Object, Object, Object> joiner = Functions.named(Functions.JOINERS, fn, "joiner");
        final JoinWindows windows = JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(0), Duration.ofMillis(op.get("grace").asLong()))
            .after(Duration.ofMillis(op.get("after").asLong()))
            .before(Duration.ofMillis(op.get("before").asLong()));
        final StreamJoined<Object, Object, Object> joined = StreamJoined.with(serde(op.get("key_serde")),
            serde(op.get("value_serde")), serde(op.get("other_value_serde")));
        return switch (name) {
            case "stream_join" -> s.join(other, joiner, windows, joined);
            case "stream_left_join" -> s.leftJoin(other, joiner, windows, joined);
            default -> s.outerJoin(other, joiner, windows, joined);
        };
    }

    /** A table-table join with the table named by "with", materialized under "store" where given. */
    @SuppressWarnings("unchecked")
    private Object tableJoin(final KTable<Object, Object> t, final String name, final String fn, final JsonNode op) {
        final KTable<Object, Object> other = (KTable<Object, Object>) named.get(op.get("with").asText());
        final ValueJoiner<Object, Object, Object> joiner = Functions.named(Functions.JOINERS, fn, "joiner");
        if (op.hasNonNull("store")) {
            return switch (name) {
                case "table_join" -> t.join(other, joiner, materialized(op));
                case "table_left_join" -> t.leftJoin(other, joiner, materialized(op));
                default -> t.outerJoin(other, joiner, materialized(op));
            };
        }
        return switch (name) {
            case "table_join" -> t.join(other, joiner);
            case "table_left_join" -> t.leftJoin(other, joiner);
            default -> t.outerJoin(other, joiner);
        };
    }

    /** A foreign-key join with the table chain named by "with", its foreign key from the
     *  function named by "fk"; with the serdes and "store" where given. */
    @SuppressWarnings("unchecked")
    private Object foreignKeyJoin(final KTable<Object, Object> t, final String name, final String fn, final JsonNode op) {
        final KTable<Object, Object> other = (KTable<Object, Object>) named.get(op.get("with").asText());
        final ValueJoiner<Object, Object, Object> joiner = Functions.named(Functions.JOINERS, fn, "joiner");
        final java.util.function.Function<Object, Object> fk =
            Functions.named(Functions.FOREIGN_KEYS, op.get("fk").asText(), "foreign key extractor");
        final boolean left = name.equals("fk_left_join");
        if (op.has("value_serde")) {
            return left ? t.leftJoin(other, fk, joiner, materialized(op)) : t.join(other, fk, joiner, materialized(op));
        }
        return left ? t.leftJoin(other, fk, joiner) : t.join(other, fk, joiner);
    }

    /** join/left_join with the table (or global table, with key_mapper) named by "with";
     *  join_key rekeys with a join key selector first. */
    @SuppressWarnings("unchecked")
    private Object streamJoin(final KStream<Object, Object> s, final String name, final String fn, final JsonNode op) {
        if (name.equals("join_key")) {
            return s.selectKey(Functions.named(Functions.JOIN_KEY_SELECTORS, fn, "join key selector"));
        }
        final ValueJoiner<Object, Object, Object> joiner = Functions.named(Functions.JOINERS, fn, "joiner");
        final boolean left = name.equals("left_join");
        final Object other = named.get(op.get("with").asText());
        if (other instanceof GlobalKTable<?, ?> g) {
            final GlobalKTable<Object, Object> global = (GlobalKTable<Object, Object>) g;
            final KeyValueMapper<Object, Object, Object> mapper =
                Functions.named(Functions.JOIN_KEY_MAPPERS, op.get("key_mapper").asText(), "join key mapper");
            return left ? s.leftJoin(global, mapper, joiner) : s.join(global, mapper, joiner);
        }
        final KTable<Object, Object> table = (KTable<Object, Object>) other;
        final Joined<Object, Object, Object> joined = op.hasNonNull("key_serde")
            ? Joined.with(serde(op.get("key_serde")), serde(op.get("value_serde")), null)
            : Joined.with(null, null, null);
        return left ? s.leftJoin(table, joiner, joined) : s.join(table, joiner, joined);
    }

    /** The branches of a split, in order, the default branch last. */
    private static List<KStream<Object, Object>> split(final KStream<Object, Object> s, final JsonNode op) {
        final BranchedKStream<Object, Object> branched = s.split(Named.as("split-"));
        final int n = op.get("preds").size();
        for (int i = 0; i < n; i++) {
            branched.branch(Functions.named(Functions.PREDICATES, op.get("preds").get(i).asText(), "predicate"),
                Branched.as(Integer.toString(i)));
        }
        final Map<String, KStream<Object, Object>> byName = branched.defaultBranch(Branched.as("default"));
        final List<KStream<Object, Object>> branches = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            branches.add(byName.get("split-" + i));
        }
        branches.add(byName.get("split-default"));
        return branches;
    }

    private Object table(final KTable<Object, Object> t, final String name, final String fn, final JsonNode op) {
        final boolean store = op.hasNonNull("store");
        return switch (name) {
            case "filter" -> store ? t.filter(Functions.named(Functions.PREDICATES, fn, "predicate"), materialized(op))
                : t.filter(Functions.named(Functions.PREDICATES, fn, "predicate"));
            case "filter_not" -> store ? t.filterNot(Functions.named(Functions.PREDICATES, fn, "predicate"), materialized(op))
                : t.filterNot(Functions.named(Functions.PREDICATES, fn, "predicate"));
            case "map_values" -> store ? t.mapValues(Functions.named(Functions.VALUE_MAPPERS, fn, "value mapper"), materialized(op))
                : t.mapValues(Functions.named(Functions.VALUE_MAPPERS, fn, "value mapper"));
            case "to_stream" -> t.toStream();
            case "suppress" -> t.suppress(Windows.suppressed(op));
            case "table_join", "table_left_join", "table_outer_join" -> tableJoin(t, name, fn, op);
            case "fk_join", "fk_left_join" -> foreignKeyJoin(t, name, fn, op);
            case "group_by" -> t.groupBy(Functions.named(Functions.PAIR_MAPPERS, fn, "pair mapper"),
                Grouped.with(serde(op.get("key_serde")), serde(op.get("value_serde"))));
            default -> throw new IllegalArgumentException("a table has no operator " + name);
        };
    }
}
