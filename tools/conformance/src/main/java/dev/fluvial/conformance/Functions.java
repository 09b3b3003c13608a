package dev.fluvial.conformance;

import java.util.List;
import java.util.Map;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.kstream.Aggregator;
import org.apache.kafka.streams.kstream.Initializer;
import org.apache.kafka.streams.kstream.KeyValueMapper;
import org.apache.kafka.streams.kstream.Predicate;
import org.apache.kafka.streams.kstream.Reducer;
import org.apache.kafka.streams.kstream.ValueJoiner;
import org.apache.kafka.streams.kstream.ValueMapper;

/**
 * The named functions a case may use. tests/conformance/functions.py defines the same names
 * with the same results in Python; values are Long (serde "long") or String (serde "string").
 */
final class Functions {
    private Functions() {}

    private static long l(final Object v) {
        return (Long) v;
    }

    private static String s(final Object v) {
        return (String) v;
    }

    static final Map<String, Predicate<Object, Object>> PREDICATES = Map.of(
        "value_even", (k, v) -> v != null && l(v) % 2 == 0,
        "value_small", (k, v) -> v != null && l(v) < 50,
        "key_a_or_b", (k, v) -> "a".equals(k) || "b".equals(k),
        "value_short", (k, v) -> v != null && s(v).length() <= 3);

    static final Map<String, ValueMapper<Object, Object>> VALUE_MAPPERS = Map.of(
        "double", v -> v == null ? null : l(v) * 2,
        "half", v -> v == null ? null : l(v) / 2,
        "null_if_odd", v -> v == null || l(v) % 2 != 0 ? null : v,
        "length", v -> v == null ? null : (long) s(v).length(),
        "upper", v -> v == null ? null : s(v).toUpperCase(),
        "str", v -> v == null ? null : Long.toString(l(v)));

    static final Map<String, KeyValueMapper<Object, Object, Object>> KEY_SELECTORS = Map.of(
        "mod3", (k, v) -> v == null ? null : "m" + l(v) % 3,
        "first_char", (k, v) -> v == null || s(v).isEmpty() ? null : s(v).substring(0, 1),
        "key_upper", (k, v) -> k == null ? null : s(k).toUpperCase());

    /** map (streams) and group_by (tables): a new key and value. */
    static final Map<String, KeyValueMapper<Object, Object, KeyValue<Object, Object>>> PAIR_MAPPERS = Map.of(
        "mod3", (k, v) -> KeyValue.pair(v == null ? null : "m" + l(v) % 3, v),
        "mod3_null_big", (k, v) -> KeyValue.pair("m" + l(v) % 3, l(v) >= 50 ? null : v),
        "null_key_odd", (k, v) -> KeyValue.pair(l(v) % 2 == 1 ? null : "m" + l(v) % 3, v),
        "first_char_len", (k, v) -> KeyValue.pair(s(v).isEmpty() ? null : s(v).substring(0, 1),
            (Object) (long) s(v).length()));

    static final Map<String, ValueMapper<Object, Iterable<Object>>> FLAT_VALUE_MAPPERS = Map.of(
        "pair_if_even", v -> v == null || l(v) % 2 != 0 ? List.of() : List.of(v, l(v) + 1));

    static final Map<String, KeyValueMapper<Object, Object, Iterable<KeyValue<Object, Object>>>> FLAT_MAPPERS = Map.of(
        "fan", (k, v) -> v == null ? List.of()
            : List.of(KeyValue.pair(k, v), KeyValue.pair("f" + l(v) % 2, v)));

    static final Map<String, Reducer<Object>> REDUCERS = Map.of(
        "sum", (a, b) -> l(a) + l(b),
        "minus", (a, b) -> l(a) - l(b),
        "max", (a, b) -> Math.max(l(a), l(b)),
        "concat", (a, b) -> s(a) + "|" + s(b));

    static final Map<String, Initializer<Object>> INITIALIZERS = Map.of(
        "zero", () -> 0L,
        "empty", () -> "");

    static final Map<String, Aggregator<Object, Object, Object>> AGGREGATORS = Map.of(
        "sum", (k, v, agg) -> l(agg) + l(v),
        "minus", (k, v, agg) -> l(agg) - l(v),
        "add_len", (k, v, agg) -> l(agg) + s(v).length(),
        "sub_len", (k, v, agg) -> l(agg) - s(v).length(),
        "append", (k, v, agg) -> s(agg) + s(v));

    // -- joins -------------------------------------------------------------------------

    private static long orMinusOne(final Object v) {
        return v == null ? -1L : l(v);
    }

    /** joiner(value, otherValue); a left/outer join passes null for a missing side. */
    static final Map<String, ValueJoiner<Object, Object, Object>> JOINERS = Map.of(
        "plus", (a, b) -> orMinusOne(a) * 1000 + orMinusOne(b));

    /** A global table's key from a stream record. */
    static final Map<String, KeyValueMapper<Object, Object, Object>> JOIN_KEY_MAPPERS = Map.of(
        "key", (k, v) -> k,
        "value_letter", (k, v) -> v == null || l(v) % 5 == 4 ? null : "abcd".substring((int) (l(v) % 5), (int) (l(v) % 5) + 1));

    /** A foreign-key join's foreign key from a left value: a letter a-d, null for 4 mod 5. */
    static final Map<String, java.util.function.Function<Object, Object>> FOREIGN_KEYS = Map.of(
        "value_letter", v -> l(v) % 5 == 4 ? null : "abcd".substring((int) (l(v) % 5), (int) (l(v) % 5) + 1));

    /** A stream's new key within the tables' key space (a-d), for a join after a rekey. */
    static final Map<String, KeyValueMapper<Object, Object, Object>> JOIN_KEY_SELECTORS = Map.of(
        "next_letter", (k, v) -> k == null ? null : Map.of("a", "b", "b", "c", "c", "d", "d", "a").get(k));

    static <T> T named(final Map<String, T> functions, final String name, final String kind) {
        final T f = functions.get(name);
        if (f == null) {
            throw new IllegalArgumentException("unknown " + kind + " " + name + "; known: " + functions.keySet());
        }
        return f;
    }
}
