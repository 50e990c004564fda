import java.time.Duration;
import java.util.Collection;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Readiness probe for the local broker started by scripts/kafka.sh.
 *
 * Usage: java -cp "$lib/*:classes" ReadyProbe BOOTSTRAP TIMEOUT_MS
 *
 * Exits 0 once the broker
 *   1. answers DescribeCluster with at least one broker,
 *   2. has a loaded consumer-group coordinator (__consumer_offsets), and
 *   3. has a loaded transaction coordinator (__transaction_state,
 *      proven by a transactional producer's initTransactions()).
 * Exits 1 with a message on stderr otherwise.
 */
public final class ReadyProbe {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: ReadyProbe BOOTSTRAP TIMEOUT_MS");
            System.exit(2);
        }
        String bootstrap = args[0];
        long timeoutMs = Long.parseLong(args[1]);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        try {
            probe(bootstrap, deadline);
        } catch (Exception e) {
            Throwable t = e;
            while (t.getCause() != null && t != t.getCause()) t = t.getCause();
            System.err.println("ReadyProbe: broker at " + bootstrap + " not ready: " + t);
            System.exit(1);
        }
        System.exit(0);
    }

    private static int remaining(long deadline) {
        long ms = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
        if (ms <= 0) throw new IllegalStateException("timed out");
        return (int) Math.min(ms, Integer.MAX_VALUE);
    }

    private static void probe(String bootstrap, long deadline) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.CLIENT_ID_CONFIG, "parley-ready-probe");
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, remaining(deadline));
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 5000);
        ap.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, 50);
        ap.put(AdminClientConfig.RETRY_BACKOFF_MAX_MS_CONFIG, 200);
        ap.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, 50);
        ap.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 200);
        try (Admin admin = Admin.create(ap)) {
            // 1. Broker registered and serving metadata.
            while (true) {
                Collection<Node> nodes = admin.describeCluster().nodes()
                        .get(remaining(deadline), TimeUnit.MILLISECONDS);
                if (!nodes.isEmpty()) break;
                Thread.sleep(50);
            }
            // 2. Group coordinator: FindCoordinator(GROUP) creates and loads
            //    __consumer_offsets; OffsetFetch succeeds only once it is loaded.
            admin.listConsumerGroupOffsets("__parley-ready-probe").all()
                    .get(remaining(deadline), TimeUnit.MILLISECONDS);
        }
        // 3. Transaction coordinator: initTransactions() creates and loads
        //    __transaction_state and allocates a producer id.
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.CLIENT_ID_CONFIG, "parley-ready-probe");
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "__parley-ready-probe");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, remaining(deadline));
        pp.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, 50);
        pp.put(ProducerConfig.RETRY_BACKOFF_MAX_MS_CONFIG, 200);
        pp.put(ProducerConfig.RECONNECT_BACKOFF_MS_CONFIG, 50);
        pp.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 200);
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
            producer.initTransactions();
            producer.close(Duration.ofMillis(remaining(deadline)));
        }
    }
}
