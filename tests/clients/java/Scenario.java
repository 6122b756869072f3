// The client scenario (see ../README.md) with the RabbitMQ Java client
// (Debian's librabbitmq-client-java). Prints "OK java" and exits 0 when every
// step behaved as RabbitMQ behaves; otherwise names the step and exits 1.

import com.rabbitmq.client.*;

import java.io.FileInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.Date;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public class Scenario {
    static final int COUNT = 100;
    static String step = "connect";

    static void fail(String what) {
        System.err.println("FAIL java, step \"" + step + "\": " + what);
        System.exit(1);
    }

    public static void main(String[] args) {
        try {
            run();
        } catch (Exception e) {
            fail(e.toString());
        }
    }

    /** A TLS context whose only trusted CA is the PEM certificate in `path`. */
    static SSLContext trusting(String path) throws Exception {
        KeyStore roots = KeyStore.getInstance(KeyStore.getDefaultType());
        roots.load(null, null);
        try (InputStream in = new FileInputStream(path)) {
            roots.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(roots);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, tmf.getTrustManagers(), null);
        return context;
    }

    static void run() throws Exception {
        ConnectionFactory f = new ConnectionFactory();
        f.setUri(System.getenv("AMQP_URL"));
        // amqps:// with AMQP_CACERT: trust that CA (PEM) only. (setUri alone
        // would trust any certificate.)
        String cacert = System.getenv("AMQP_CACERT");
        if (cacert != null) {
            f.useSslProtocol(trusting(cacert));
        }
        // A short heartbeat, so that the idle pause below proves both sides keep it.
        f.setRequestedHeartbeat(2);
        String prefix = System.getenv().getOrDefault("NAME_PREFIX", "") + "java-";
        Connection conn = f.newConnection("warren-client-scenario");
        Channel ch = conn.createChannel();

        step = "declare a durable queue";
        String q = prefix + "work";
        ch.queueDeclare(q, true, false, false, null);

        step = "publish persistent messages with confirms";
        ch.confirmSelect();
        for (int i = 0; i < COUNT; i++) {
            Map<String, Object> headers = new HashMap<>();
            headers.put("n", i);
            headers.put("lang", "java");
            AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                    .deliveryMode(2).contentType("text/plain").correlationId("c-" + i).messageId("m-" + i)
                    .priority(3).timestamp(new Date(1700000000000L)).headers(headers).build();
            ch.basicPublish("", q, props, ("message " + i).getBytes(StandardCharsets.UTF_8));
        }
        ch.waitForConfirmsOrDie(10_000);

        step = "consume with prefetch and manual acks";
        ch.basicQos(10);
        BlockingQueue<Delivery> got = new ArrayBlockingQueue<>(COUNT);
        String tag = ch.basicConsume(q, false, "java-consumer", (t, d) -> got.add(d), t -> {});
        for (int i = 0; i < COUNT; i++) {
            Delivery d = got.poll(10, TimeUnit.SECONDS);
            if (d == null) fail("only " + i + " of " + COUNT + " deliveries arrived");
            AMQP.BasicProperties p = d.getProperties();
            String body = new String(d.getBody(), StandardCharsets.UTF_8);
            if (!body.equals("message " + i) || !("c-" + i).equals(p.getCorrelationId())
                    || !("m-" + i).equals(p.getMessageId())) {
                fail("delivery " + i + ": " + body + " " + p);
            }
            if (p.getDeliveryMode() != 2 || p.getPriority() != 3 || !"text/plain".equals(p.getContentType())
                    || p.getTimestamp().getTime() != 1700000000000L) {
                fail("delivery " + i + " lost properties: " + p);
            }
            Object n = p.getHeaders().get("n");
            if (!(n instanceof Integer) || (Integer) n != i || !"java".equals(p.getHeaders().get("lang").toString())) {
                fail("delivery " + i + " headers: " + p.getHeaders());
            }
            ch.basicAck(d.getEnvelope().getDeliveryTag(), false);
        }
        ch.basicCancel(tag);

        step = "get from the empty queue";
        if (ch.basicGet(q, false) != null) fail("basic.get returned a message from an empty queue");

        step = "topic routing and a mandatory publish that returns";
        String x = prefix + "topic";
        ch.exchangeDeclare(x, BuiltinExchangeType.TOPIC, false, true, null);
        String sub = ch.queueDeclare().getQueue();
        if (!sub.startsWith("amq.gen-")) fail("server-named queue " + sub);
        ch.queueBind(sub, x, "lqz.*");
        BlockingQueue<Return> returns = new ArrayBlockingQueue<>(1);
        ch.addReturnListener(r -> returns.add(r));
        ch.basicPublish(x, "lqz.handsome", true, null, "one word".getBytes(StandardCharsets.UTF_8));
        ch.basicPublish(x, "lqz.handsome.xx", true, null, "two words".getBytes(StandardCharsets.UTF_8));
        Return r = returns.poll(10, TimeUnit.SECONDS);
        if (r == null || r.getReplyCode() != 312 || !r.getRoutingKey().equals("lqz.handsome.xx")) {
            fail("return: " + (r == null ? "none" : r.getReplyCode() + " " + r.getReplyText()));
        }
        GetResponse one = ch.basicGet(sub, true);
        if (one == null || !new String(one.getBody(), StandardCharsets.UTF_8).equals("one word")) {
            fail("the routed message: " + one);
        }

        step = "a 406 closes the channel, not the connection";
        Channel bad = conn.createChannel();
        try {
            bad.queueDeclare(q, false, false, false, null);
            fail("redeclaring durable " + q + " as transient succeeded");
        } catch (java.io.IOException e) {
            ShutdownSignalException s = (ShutdownSignalException) e.getCause();
            AMQP.Channel.Close close = (AMQP.Channel.Close) s.getReason();
            if (close.getReplyCode() != 406 || !close.getReplyText().contains("inequivalent arg 'durable'")) {
                fail("redeclare: " + close.getReplyCode() + " " + close.getReplyText());
            }
        }
        if (!conn.isOpen()) fail("the connection closed");
        Channel again = conn.createChannel();
        again.queueDeclarePassive(q);

        step = "a 1 MiB message crosses frames both ways";
        byte[] big = new byte[1 << 20];
        for (int i = 0; i < big.length; i++) big[i] = (byte) (i * 7);
        again.basicPublish("", q, null, big);
        GetResponse back = null;
        for (int tries = 0; back == null && tries < 100; tries++) {
            back = again.basicGet(q, true);
            if (back == null) Thread.sleep(50);
        }
        if (back == null || !java.util.Arrays.equals(back.getBody(), big)) fail("got " + back);

        step = "the server cancels a consumer whose queue is deleted";
        String gone = prefix + "gone";
        again.queueDeclare(gone, false, false, false, null);
        BlockingQueue<String> cancels = new ArrayBlockingQueue<>(1);
        again.basicConsume(gone, true, "doomed", (t, d) -> {}, t -> cancels.add(t));
        Channel other = conn.createChannel();
        other.queueDelete(gone);
        String cancelled = cancels.poll(10, TimeUnit.SECONDS);
        if (!"doomed".equals(cancelled)) fail("cancelled " + cancelled);

        step = "an idle connection outlives several heartbeat intervals";
        if (conn.getHeartbeat() != 2) fail("heartbeat negotiated: " + conn.getHeartbeat());
        Thread.sleep(5000);
        if (!conn.isOpen()) fail("the connection closed while idle");

        step = "delete and close";
        again.queueDelete(q);
        again.exchangeDelete(x);
        conn.close();
        System.out.println("OK java");
    }
}
