package dev.fluvial.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * Nexmark q0-q5, q7, q8 in Java Kafka Streams: the same queries as bench/nexmark (queries.py,
 * stateful.py), step for step, so that each output can be checked against the same
 * plain-Python reference.
 *
 * <p>q0-q2 read the harness's bid topic ({@code input}); q3-q8 read {@code <input>-person},
 * {@code -auction}, {@code -bid} ({@code input} is the topic prefix). Keys are decimal
 * strings, values JSON.
 */
final class Nexmark {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Serde<String> KEY = Serdes.String();
    static final Serde<JsonNode> VALUE = Serdes.serdeFrom(new JsonSerializer(),
            new JsonDeserializer());

    private static final double DOLLAR_TO_EURO = 0.908;
    private static final long AUCTION_SKIP = 123;
    private static final Set<String> Q3_STATES = Set.of("OR", "ID", "CA");
    private static final long Q3_CATEGORY = 10;
    private static final Duration WINDOW = Duration.ofSeconds(10);
    private static final Duration HOP = Duration.ofSeconds(2);
    /** bench/nexmark/harness.py GRACE_MS: longer than any input, so no record is late. */
    static final Duration GRACE = Duration.ofMillis(3_600_000L);
    /** bench/nexmark/stateful.py _kept: twice the grace and a window. */
    private static final Duration RETENTION = GRACE.multipliedBy(2).plus(WINDOW);

    private Nexmark() {}

    static Topology topology(String workload, String input, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, JsonNode> out = switch (workload) {
            case "nexmark-q0" -> bids(builder, input).mapValues(Nexmark::q0Row);
            case "nexmark-q1" -> bids(builder, input).mapValues(Nexmark::q1Row);
            case "nexmark-q2" -> bids(builder, input)
                    .filter((k, bid) -> bid.get("auction").asLong() % AUCTION_SKIP == 0)
                    .mapValues(bid -> object().<ObjectNode>set("auction", bid.get("auction"))
                            .set("price", bid.get("price")));
            case "nexmark-q3" -> q3(builder, input);
            case "nexmark-q4" -> q4(builder, input);
            case "nexmark-q5" -> q5(builder, input);
            case "nexmark-q7" -> q7(builder, input);
            case "nexmark-q8" -> q8(builder, input);
            default -> throw new IllegalArgumentException("unknown workload " + workload);
        };
        out.to(output, Produced.with(KEY, VALUE));
        return builder.build();
    }

    private static KStream<String, JsonNode> bids(StreamsBuilder builder, String topic) {
        return builder.stream(topic, Consumed.with(KEY, VALUE));
    }

    private static ObjectNode object() {
        return JSON.createObjectNode();
    }

    private static ObjectNode copy(JsonNode from, String... fields) {
        ObjectNode out = object();
        for (String f : fields) {
            out.set(f, from.get(f));
        }
        return out;
    }

    static JsonNode q0Row(JsonNode bid) {
        return copy(bid, "auction", "bidder", "price", "dateTime", "extra");
    }

    static JsonNode q1Row(JsonNode bid) {
        ObjectNode out = copy(bid, "auction", "bidder", "price", "dateTime", "extra");
        out.put("price", DOLLAR_TO_EURO * bid.get("price").asLong());
        return out;
    }

    /** Auctions of category 10 joined with their seller from OR, ID or CA (stream-table). */
    static KStream<String, JsonNode> q3(StreamsBuilder builder, String prefix) {
        KTable<String, JsonNode> people = builder.table(prefix + "-person",
                        Consumed.with(KEY, VALUE))
                .filter((k, p) -> Q3_STATES.contains(p.get("state").asText()));
        return builder.stream(prefix + "-auction", Consumed.with(KEY, VALUE))
                .filter((k, a) -> a.get("category").asLong() == Q3_CATEGORY)
                .selectKey((k, a) -> a.get("seller").asText())
                .join(people, (a, p) -> copy(p, "name", "city", "state")
                        .set("id", a.get("id")), Joined.with(KEY, VALUE, VALUE));
    }

    /** The highest bid per auction while it is open, averaged per category. */
    static KStream<String, JsonNode> q4(StreamsBuilder builder, String prefix) {
        KTable<String, JsonNode> auctions = builder.table(prefix + "-auction",
                Consumed.with(KEY, VALUE));
        KTable<String, JsonNode> finals = builder.stream(prefix + "-bid",
                        Consumed.with(KEY, VALUE))
                .join(auctions, Nexmark::bidInAuction, Joined.with(KEY, VALUE, VALUE))
                .filter((k, v) -> v != null)
                .groupByKey(Grouped.with(KEY, VALUE))
                .aggregate(() -> null, (k, bid, best) ->
                                best == null || bid.get("price").asLong() > best.get("price")
                                        .asLong() ? bid : best,
                        Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>with(KEY,
                                VALUE));
        return finals
                .groupBy((auction, best) -> KeyValue.pair(best.get("category").asText(),
                        best.get("price").asLong()), Grouped.with(KEY, Serdes.Long()))
                .aggregate(() -> total(0, 0),
                        (category, price, t) -> total(t.get("sum").asLong() + price,
                                t.get("count").asLong() + 1),
                        (category, price, t) -> total(t.get("sum").asLong() - price,
                                t.get("count").asLong() - 1),
                        Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>with(KEY,
                                VALUE))
                .filter((k, t) -> t.get("count").asLong() > 0)
                .mapValues(t -> (JsonNode) object().put("avg",
                        (double) t.get("sum").asLong() / t.get("count").asLong()))
                .toStream();
    }

    private static JsonNode bidInAuction(JsonNode bid, JsonNode auction) {
        long time = bid.get("dateTime").asLong();
        if (auction.get("dateTime").asLong() <= time && time <= auction.get("expires").asLong()) {
            return object().<ObjectNode>set("price", bid.get("price"))
                    .set("category", auction.get("category"));
        }
        return null;
    }

    private static JsonNode total(long sum, long count) {
        return object().put("sum", sum).put("count", count);
    }

    /** Bids per auction in hopping windows, the auctions with the most bids per window. */
    static KStream<String, JsonNode> q5(StreamsBuilder builder, String prefix) {
        return builder.stream(prefix + "-bid", Consumed.with(KEY, VALUE))
                .groupByKey(Grouped.with(KEY, VALUE))
                .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW, GRACE).advanceBy(HOP))
                .emitStrategy(EmitStrategy.onWindowClose())
                .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>with(KEY,
                        Serdes.Long()).withRetention(RETENTION))
                .toStream()
                .map((w, num) -> KeyValue.pair(String.valueOf(w.window().start()),
                        (JsonNode) object().put("auction", Long.parseLong(w.key()))
                                .put("num", num)))
                .groupByKey(Grouped.with(KEY, VALUE))
                .aggregate(() -> (JsonNode) object().put("num", 0).set("auctions",
                                JSON.createArrayNode()), Nexmark::withMostBids,
                        Materialized.<String, JsonNode, KeyValueStore<Bytes, byte[]>>with(KEY,
                                VALUE))
                .toStream();
    }

    private static JsonNode withMostBids(String start, JsonNode counted, JsonNode hot) {
        long num = counted.get("num").asLong();
        long most = hot.get("num").asLong();
        if (num < most) {
            return hot;
        }
        List<Long> ids = new ArrayList<>();
        if (num == most) {
            hot.get("auctions").forEach(a -> ids.add(a.asLong()));
        }
        ids.add(counted.get("auction").asLong());
        ids.sort(null);
        ArrayNode auctions = JSON.createArrayNode();
        ids.forEach(auctions::add);
        return object().put("num", num).set("auctions", auctions);
    }

    /** The highest bid(s) of each tumbling window: every bid to one key, then per window. */
    static KStream<String, JsonNode> q7(StreamsBuilder builder, String prefix) {
        return builder.stream(prefix + "-bid", Consumed.with(KEY, VALUE))
                .groupBy((k, bid) -> "all", Grouped.with(KEY, VALUE))
                .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW, GRACE))
                .emitStrategy(EmitStrategy.onWindowClose())
                .aggregate(() -> (JsonNode) object().put("price", -1).set("bids",
                                JSON.createArrayNode()), Nexmark::keepHighest,
                        Materialized.<String, JsonNode, WindowStore<Bytes, byte[]>>with(KEY,
                                VALUE).withRetention(RETENTION))
                .toStream()
                .flatMap((w, top) -> {
                    List<KeyValue<String, JsonNode>> rows = new ArrayList<>();
                    top.get("bids").forEach(b -> rows.add(KeyValue.pair(
                            b.get("auction").asText(), q0Row(b))));
                    return rows;
                });
    }

    private static JsonNode keepHighest(String key, JsonNode bid, JsonNode top) {
        long price = bid.get("price").asLong();
        long best = top.get("price").asLong();
        if (price < best) {
            return top;
        }
        ArrayNode bids = JSON.createArrayNode();
        if (price == best) {
            bids.addAll((ArrayNode) top.get("bids"));
        }
        bids.add(bid);
        return object().put("price", price).set("bids", bids);
    }

    /** People who opened an auction in the tumbling window in which they registered. */
    static KStream<String, JsonNode> q8(StreamsBuilder builder, String prefix) {
        KStream<String, JsonNode> auctions = builder.stream(prefix + "-auction",
                        Consumed.with(KEY, VALUE))
                .selectKey((k, a) -> a.get("seller").asText());
        return builder.stream(prefix + "-person", Consumed.with(KEY, VALUE))
                .join(auctions, Nexmark::sameWindow, JoinWindows.ofTimeDifferenceAndGrace(WINDOW,
                        GRACE), StreamJoined.with(KEY, VALUE, VALUE))
                .filter((k, v) -> v != null)
                .groupByKey(Grouped.with(KEY, VALUE))
                .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW, GRACE))
                .emitStrategy(EmitStrategy.onWindowClose())
                .reduce((first, again) -> first,
                        Materialized.<String, JsonNode, WindowStore<Bytes, byte[]>>with(KEY,
                                VALUE).withRetention(RETENTION))
                .toStream()
                .map((w, row) -> KeyValue.pair(w.key(), row));
    }

    private static JsonNode sameWindow(JsonNode person, JsonNode auction) {
        long size = WINDOW.toMillis();
        long born = person.get("dateTime").asLong();
        long opened = auction.get("dateTime").asLong();
        if (opened - opened % size != born - born % size) {
            return null;
        }
        return object().<ObjectNode>set("id", person.get("id")).<ObjectNode>set("name",
                person.get("name")).put("starttime", born - born % size);
    }

    /** JSON values; null stays null (a table's tombstone). */
    static final class JsonSerializer implements Serializer<JsonNode> {
        @Override
        public byte[] serialize(String topic, JsonNode value) {
            if (value == null) {
                return null;
            }
            try {
                return JSON.writeValueAsBytes(value);
            } catch (IOException e) {
                throw new IllegalStateException("JSON for " + topic + ": " + e.getMessage(), e);
            }
        }
    }

    static final class JsonDeserializer implements Deserializer<JsonNode> {
        @Override
        public JsonNode deserialize(String topic, byte[] data) {
            if (data == null) {
                return null;
            }
            try {
                return JSON.readTree(data);
            } catch (IOException e) {
                throw new IllegalStateException("JSON from " + topic + ": " + e.getMessage(), e);
            }
        }
    }
}
