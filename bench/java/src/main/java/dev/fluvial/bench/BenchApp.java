package dev.fluvial.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

/**
 * The Java Kafka Streams side of the fluvial benchmarks: one topology per workload, the same
 * work as bench/workloads/*.py, one stream thread, at-least-once.
 *
 * <p>Args: workload bootstrap application.id input output commit.interval.ms state.dir
 */
public final class BenchApp {
    private static final ObjectMapper JSON = new ObjectMapper();
    // Same table as bench/workloads/stateless.py RATES.
    private static final Map<String, Double> RATES =
            Map.of("EUR", 1.0, "USD", 0.92, "GBP", 1.17, "CHF", 1.05);
    private static final double MIN_AMOUNT = 50.0;
    private static final double BIG_EUR = 100.0;

    private BenchApp() {}

    static Topology stateless(String input, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.ByteArray()))
                .mapValues(BenchApp::decode)
                .filter((k, v) -> v.get("amount").asDouble() >= MIN_AMOUNT)
                .mapValues(BenchApp::transform)
                .to(output, Produced.with(Serdes.String(), Serdes.ByteArray()));
        return builder.build();
    }

    static JsonNode decode(byte[] value) {
        try {
            return JSON.readTree(value);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }

    static byte[] transform(JsonNode v) {
        double eur = Math.round(v.get("amount").asDouble() * RATES.get(v.get("currency").asText())
                * 100.0) / 100.0;
        ObjectNode out = JSON.createObjectNode();
        out.set("id", v.get("id"));
        out.set("user", v.get("user"));
        out.put("amount_eur", eur);
        out.put("big", eur >= BIG_EUR);
        out.set("country", v.get("country"));
        try {
            return JSON.writeValueAsBytes(out);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }

    static Topology wordcount(String input, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .flatMapValues(line -> Arrays.stream(line.toLowerCase(Locale.ROOT).split("\\W+"))
                        .filter(w -> !w.isEmpty()).toList())
                .groupBy((k, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
                .count(Materialized.as("counts"))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));
        return builder.build();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 7) {
            System.err.println("usage: BenchApp workload bootstrap application.id input output "
                    + "commit.interval.ms state.dir");
            System.exit(2);
        }
        String workload = args[0];
        Topology topology = switch (workload) {
            case "stateless" -> stateless(args[3], args[4]);
            case "wordcount" -> wordcount(args[3], args[4]);
            // nexmark-q0..q2: args[3] is the bid topic; q3..q8: the per-type topics' prefix
            default -> Nexmark.topology(workload, args[3], args[4]);
        };
        Properties props = new Properties();
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[2]);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Integer.parseInt(args[5]));
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[6]);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        KafkaStreams streams = new KafkaStreams(topology, props);
        CountDownLatch done = new CountDownLatch(1);
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            done.countDown();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                    .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(java.time.Duration.ofSeconds(30));
            done.countDown();
        }));
        streams.start();
        System.out.println("BenchApp " + workload + " started");
        done.await();
    }
}
