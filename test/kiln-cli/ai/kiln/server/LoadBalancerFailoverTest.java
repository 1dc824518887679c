package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.server.CompletionLoad.Outcome;
import ai.kiln.server.CompletionLoad.Shape;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.http.HttpClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Three {@code kiln serve} processes behind HAProxy running {@code deploy/haproxy/haproxy.cfg}, under
 * a load of streamed and whole completions sent through the balancer, while one server is killed,
 * drained, restarted or slowed. Skipped where haproxy is not installed (.ci/run installs it).
 */
class LoadBalancerFailoverTest {

    static final String MODEL = "llama3-gqa";
    static final List<String> NAMES = List.of("kiln1", "kiln2", "kiln3");
    /**
     * A short grace period, since these drains last well under a second; 4 sequences at once, so
     * that a server sent more than that directly queues the rest.
     */
    static final String[] SERVE_FLAGS = {"--grace-period-seconds", "10", "--max-num-seqs", "4"};
    /**
     * Streams long enough to be caught in flight (the fixture makes a token in well under a
     * millisecond: 480 take 150 ms or more), within its 512 positions; whole answers short.
     */
    static final int STREAMED_TOKENS = 480;
    static final int WHOLE_TOKENS = 16;
    static final int WORKERS = 6;
    /** A stream whose headers came this recently (20 ms) has most of its tokens still to be generated. */
    static final long JUST_BEGUN_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

    static Path haproxyBinary;

    final ServeProcess[] servers = new ServeProcess[NAMES.size()];
    final List<Integer> serverPorts = new ArrayList<>();
    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    Haproxy balancer;

    @BeforeAll
    static void findHaproxy() {
        haproxyBinary = Haproxy.find().orElse(null);
    }

    @BeforeEach
    void startServersBehindTheBalancer() throws Exception {
        // NOTE: assumed here rather than in findHaproxy, so that each case is reported skipped, with the reason.
        Assumptions.assumeTrue(haproxyBinary != null, "haproxy is not installed (not on the PATH nor in /usr/sbin):"
                + " the load-balancer failover tests do not run (Debian: apt-get install haproxy, as .ci/run does)");
        List<Integer> ports = freePorts(NAMES.size() + 1);
        serverPorts.addAll(ports.subList(0, NAMES.size()));
        for (int i = 0; i < servers.length; i++) {
            servers[i] = ServeProcess.onPort(serverPorts.get(i), SERVE_FLAGS);
        }
        for (ServeProcess server : servers) {
            awaitReady(server);
        }
        balancer = Haproxy.start(haproxyBinary, ports.get(NAMES.size()), serverPorts);
    }

    @AfterEach
    void stopEverything() throws Exception {
        if (balancer != null) {
            balancer.close();
        }
        for (ServeProcess server : servers) {
            if (server != null) {
                server.close();
            }
        }
    }

    @Test
    void killingAServerFailsOnlyTheAnswersItHadBegunAndTheRestAreRetried() throws Exception {
        int victim = 1;
        String name = NAMES.get(victim);
        Set<String> openAtKill;
        long killedAt;
        List<Outcome> outcomes;
        try (CompletionLoad load = CompletionLoad.start(balancer.base(), MODEL,
                Shape.mixed(STREAMED_TOKENS, WHOLE_TOKENS), "kill", WORKERS)) {
            warmUp(load);
            // NOTE: killed just after it began a stream, which it cannot have finished sending yet
            // (the stream's tokens take it far longer than that); a stream the client has read only
            // part of may have been sent in full already.
            load.awaitOpen(open -> open.stream().anyMatch(o -> o.streamed() && name.equals(o.server())
                    && System.nanoTime() - o.headersNanos() < JUST_BEGUN_NANOS), Duration.ofSeconds(30));
            openAtKill = load.openOn(name);
            killedAt = System.nanoTime();
            servers[victim].process.destroyForcibly();
            assertTrue(servers[victim].process.waitFor(10, TimeUnit.SECONDS), "kill -9 did not end the server");
            // The load goes on against the two left.
            Thread.sleep(2000);
            outcomes = load.stop();
        }

        List<Outcome> failed = outcomes.stream().filter(o -> !o.ok()).toList();
        Map<String, Outcome> byId = outcomes.stream().collect(Collectors.toMap(Outcome::id, o -> o));
        // What it had begun answering (headers came from it) and not finished: its share of the failures.
        List<Outcome> cutOff = outcomes.stream()
                .filter(o -> name.equals(o.server()) && o.headersNanos() > 0 && !o.ok()).toList();
        assertTrue(failed.stream().noneMatch(Outcome::timedOut), "a request hung until its deadline: " + failed);
        assertEquals(ids(cutOff), ids(failed), () -> "only the answers the killed server had begun may fail: "
                + failed + "\nthe balancer's log of them: " + balancer.requests().stream()
                        .filter(r -> ids(failed).contains(r.id())).toList());
        assertTrue(!failed.isEmpty(), () -> "the stream it had just begun was cut off: " + openAtKill.stream()
                .map(id -> byId.get(id) + " headers " + millis(byId.get(id).headersNanos() - killedAt) + " ms, end "
                        + millis(byId.get(id).endNanos() - killedAt) + " ms after the kill").toList()
                + "\n" + balancer.lines().stream().filter(l -> openAtKill.stream().anyMatch(l::contains)).toList()
                + "\n" + servers[victim].lines().stream().filter(l -> openAtKill.stream().anyMatch(l::contains)).toList());
        List<Outcome> sentAfter = outcomes.stream().filter(o -> o.sentNanos() > killedAt).toList();
        assertTrue(sentAfter.size() >= 10 && sentAfter.stream().allMatch(Outcome::ok),
                "the requests sent after the kill are answered by the others: " + sentAfter.size() + " "
                        + sentAfter.stream().filter(o -> !o.ok()).toList());

        // What it had not begun answering when it died (in flight on it, or sent to it before the
        // balancer marked it down) went to another server. NOTE: there may be none, where the
        // balancer's check found it dead before a request was sent to it.
        List<Haproxy.LoggedRequest> retried = balancer.requests().stream().filter(r -> r.retries() != 0).toList();
        for (Haproxy.LoggedRequest r : retried) {
            Outcome outcome = byId.get(r.id());
            assertTrue(outcome != null && outcome.ok() && !name.equals(outcome.server()),
                    "a retried request is answered by another server: " + r + " " + outcome);
        }
        long endedBy = failed.stream().mapToLong(Outcome::endNanos).max().orElse(killedAt);
        figures("kill -9 of " + name, Map.of(
                "requests", outcomes.size(),
                "failed", failed.size(),
                "streams open on it at the kill (as the client saw)", openAtKill.size(),
                "of which answered in full anyway", openAtKill.stream().filter(id -> byId.get(id).ok()).count(),
                "begun by it and unfinished", cutOff.size(),
                "retried by the balancer (each answered by another)", retried.size(),
                "errors the clients saw", failed.stream().map(Outcome::failure).collect(Collectors.toSet()),
                "ms from the kill to the last failure seen by a client", millis(endedBy - killedAt),
                "sent after the kill", sentAfter.size()));
    }

    @Test
    void aDrainingServerLeavesTheBalancerWithoutAFailedRequest() throws Exception {
        int draining = 1;
        String name = NAMES.get(draining);
        Set<String> openAtTerm;
        long termAt;
        long exitedAt;
        List<Outcome> outcomes;
        try (CompletionLoad load = CompletionLoad.start(balancer.base(), MODEL,
                Shape.mixed(STREAMED_TOKENS, WHOLE_TOKENS), "drain", WORKERS)) {
            warmUp(load);
            load.awaitOpen(open -> open.stream().anyMatch(o -> o.streamed() && name.equals(o.server())),
                    Duration.ofSeconds(30));
            openAtTerm = load.openOn(name);
            termAt = System.nanoTime();
            // SIGTERM. NOTE: Process.destroy() would also close our end of the child's output pipe.
            assertTrue(servers[draining].process.toHandle().destroy());
            assertTrue(servers[draining].process.waitFor(30, TimeUnit.SECONDS), "the server did not exit after draining");
            exitedAt = System.nanoTime();
            assertEquals(0, servers[draining].process.exitValue(), String.join("\n", servers[draining].lines()));
            Thread.sleep(1500);
            outcomes = load.stop();
        }
        long downAt = balancer.awaitLine(l -> l.contains("kiln_servers/" + name + " is DOWN"), termAt,
                Duration.ofSeconds(1));

        List<Outcome> failed = outcomes.stream().filter(o -> !o.ok()).toList();
        assertEquals(List.of(), failed, () -> "no request fails while a server drains; the balancer's log of them: "
                + logOf(failed));
        Set<String> finishedByIt = outcomes.stream().filter(o -> openAtTerm.contains(o.id()) && o.ok()
                && name.equals(o.server())).map(Outcome::id).collect(Collectors.toSet());
        assertEquals(openAtTerm, finishedByIt, "the draining server finishes the streams it had begun");
        assertTrue(!openAtTerm.isEmpty());
        assertTrue(downAt < exitedAt, "the balancer marks the server down from its /ready, before it exits");
        List<Outcome> sentToItAfterDown = outcomes.stream()
                .filter(o -> name.equals(o.server()) && o.sentNanos() > downAt).toList();
        assertEquals(List.of(), sentToItAfterDown, "the balancer sends it nothing once it has marked it down");
        long sentAfterDown = outcomes.stream().filter(o -> o.sentNanos() > downAt).count();
        assertTrue(sentAfterDown >= 10, "the load went on after the server was marked down: " + sentAfterDown);
        List<Haproxy.LoggedRequest> retried = balancer.requests().stream()
                .filter(r -> r.retries() != 0 && r.status() == 200).toList();
        figures("SIGTERM of " + name, Map.of(
                "requests", outcomes.size(),
                "failed", failed.size(),
                "streams open on it at SIGTERM (all finished)", openAtTerm.size(),
                "sent after it was marked down (none to it)", sentAfterDown,
                "ms from SIGTERM to the balancer marking it down", millis(downAt - termAt),
                "ms from SIGTERM to its exit (0)", millis(exitedAt - termAt),
                "retried by the balancer and answered 200", retried.size()));
    }

    @Test
    void aRollingRestartOfEveryServerFailsNoRequest() throws Exception {
        List<Outcome> outcomes;
        Map<String, Long> awayMillis = new TreeMap<>();
        try (CompletionLoad load = CompletionLoad.start(balancer.base(), MODEL,
                Shape.mixed(STREAMED_TOKENS, WHOLE_TOKENS), "rolling", WORKERS)) {
            warmUp(load);
            for (int i = 0; i < servers.length; i++) {
                String name = NAMES.get(i);
                long termAt = System.nanoTime();
                assertTrue(servers[i].process.toHandle().destroy());
                assertTrue(servers[i].process.waitFor(30, TimeUnit.SECONDS), name + " did not exit after draining");
                assertEquals(0, servers[i].process.exitValue(), String.join("\n", servers[i].lines()));
                servers[i].close();
                servers[i] = ServeProcess.onPort(serverPorts.get(i), SERVE_FLAGS);
                awaitReady(servers[i]);
                long readyAt = System.nanoTime();
                // Back in the balancer: it answers a request sent after it was ready again.
                Outcome first = load.awaitOutcome(o -> name.equals(o.server()) && o.sentNanos() > readyAt && o.ok(),
                        Duration.ofSeconds(20));
                awayMillis.put(name, millis(first.headersNanos() - termAt));
            }
            Thread.sleep(1000);
            outcomes = load.stop();
        }
        List<Outcome> failed = outcomes.stream().filter(o -> !o.ok()).toList();
        assertEquals(List.of(), failed, () -> "no request fails in a rolling restart; the balancer's log of them: "
                + logOf(failed));
        Map<String, Object> figures = new TreeMap<>();
        figures.put("requests", outcomes.size());
        figures.put("failed", failed.size());
        awayMillis.forEach((name, ms) -> figures.put("ms from SIGTERM of " + name + " to its first answer after its restart", ms));
        figures("rolling restart", figures);
    }

    @Test
    void aServerSlowedByDirectLoadGetsFewerRequestsThroughTheBalancer() throws Exception {
        int slowed = 0;
        String name = NAMES.get(slowed);
        Map<String, Long> perServer;
        List<Outcome> outcomes;
        // Three times its --max-num-seqs in long streams sent to it directly: it runs 4 and queues 8.
        try (CompletionLoad direct = CompletionLoad.start(servers[slowed].base(), MODEL, Shape.streamed(400),
                "direct", 12)) {
            DrainTest.awaitMetric(http, servers[slowed].base(), "kiln_requests_waiting 8.0", Duration.ofSeconds(30));
            try (CompletionLoad load = CompletionLoad.start(balancer.base(), MODEL, Shape.whole(WHOLE_TOKENS),
                    "slow", WORKERS)) {
                Thread.sleep(5000);
                outcomes = load.stop();
            }
        }
        perServer = outcomes.stream().filter(Outcome::ok)
                .collect(Collectors.groupingBy(Outcome::server, TreeMap::new, Collectors.counting()));
        List<Outcome> failed = outcomes.stream().filter(o -> !o.ok()).toList();
        assertEquals(List.of(), failed);
        long slowCount = perServer.getOrDefault(name, 0L);
        long fewestOfTheOthers = NAMES.stream().filter(n -> !n.equals(name))
                .mapToLong(n -> perServer.getOrDefault(n, 0L)).min().orElseThrow();
        assertTrue(slowCount * 4 < fewestOfTheOthers,
                "the slowed server gets under a quarter of what each other one gets: " + perServer);
        Map<String, Object> figures = new TreeMap<>();
        perServer.forEach((server, n) -> figures.put("answered by " + server, n));
        figures.put("slowed", name);
        figures("one server slowed", figures);
    }

    /** Waits until every server has answered through the balancer. */
    private static void warmUp(CompletionLoad load) throws InterruptedException {
        for (String name : NAMES) {
            load.awaitOutcome(o -> name.equals(o.server()) && o.ok(), Duration.ofSeconds(30));
        }
    }

    /** The balancer's log lines of {@code outcomes}. */
    private List<String> logOf(List<Outcome> outcomes) {
        Set<String> ids = ids(outcomes);
        return balancer.lines().stream().filter(l -> ids.stream().anyMatch(id -> l.contains("id=" + id + " "))).toList();
    }

    private static Set<String> ids(List<Outcome> outcomes) {
        return outcomes.stream().map(Outcome::id).collect(Collectors.toCollection(TreeSet::new));
    }

    private static long millis(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    /** The measured figures, on the test's output (docs/deploy.md quotes them). */
    private static void figures(String what, Map<String, ?> figures) {
        System.out.println("load-balancer figures, " + what + ": " + new TreeMap<>(figures));
    }

    /**
     * Ports free now, distinct, below the kernel's range for outgoing connections (32768 up on
     * Linux by default). NOTE: a port from that range, freed by a server that exits, may be taken
     * as the local port of one of the many connections the balancer opens, and the restarted
     * server could not bind it.
     */
    private static List<Integer> freePorts(int count) throws Exception {
        Random random = new Random();
        List<ServerSocket> held = new ArrayList<>();
        try {
            while (held.size() < count) {
                ServerSocket socket = new ServerSocket();
                try {
                    socket.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 20000 + random.nextInt(12000)));
                    held.add(socket);
                } catch (java.io.IOException taken) {
                    socket.close();
                }
            }
            return held.stream().map(ServerSocket::getLocalPort).toList();
        } finally {
            for (ServerSocket socket : held) {
                socket.close();
            }
        }
    }

    /** Waits for {@code server}'s /ready to answer 200; its output is in the failure. */
    private void awaitReady(ServeProcess server) throws Exception {
        try {
            DrainTest.awaitStatus(http, server.base() + "/ready", 200, Duration.ofSeconds(60));
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "; the server's output: " + server.lines(), e);
        }
    }
}
