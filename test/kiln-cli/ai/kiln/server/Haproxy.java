package ai.kiln.server;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * HAProxy running {@code deploy/haproxy/haproxy.cfg} as it is checked in, in front of servers on
 * loopback ports: its log (one line per request, and one per server marked up or down) as it
 * comes. Closing stops it.
 */
final class Haproxy implements AutoCloseable {

    static final Path CONFIG = Path.of("deploy", "haproxy", "haproxy.cfg");

    /** The config's request log line: {@code request id=... server=... retries=... status=...}. */
    static final Pattern REQUEST_LINE = Pattern.compile(
            "request id=(\\S*) server=(\\S*) retries=(\\+?)(-?\\d+) status=(-?\\d+) bytes=(\\d+) total_ms=(-?\\d+)"
                    + " termination=(\\S+)");

    /** One request as HAProxy logged it when it ended. */
    record LoggedRequest(String id, String server, int retries, boolean redispatched, int status, String termination) {
    }

    private final Process process;
    private final int port;
    private final List<String> lines = Collections.synchronizedList(new ArrayList<>());
    /** When each line arrived, in System.nanoTime(), beside {@link #lines}. */
    private final List<Long> arrivals = Collections.synchronizedList(new ArrayList<>());

    /**
     * The haproxy binary: on the PATH, or in the sbin directories Debian's package installs it in
     * (which a non-root user's PATH often leaves out).
     */
    static Optional<Path> find() {
        Set<String> dirs = new LinkedHashSet<>(List.of(System.getenv().getOrDefault("PATH", "").split(":")));
        dirs.addAll(List.of("/usr/sbin", "/usr/local/sbin", "/sbin"));
        for (String dir : dirs) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "haproxy"))) {
                return Optional.of(Path.of(dir, "haproxy"));
            }
        }
        return Optional.empty();
    }

    /** Starts {@code binary} on {@code port} in front of the servers on {@code serverPorts}, in order (kiln1, kiln2, ...). */
    static Haproxy start(Path binary, int port, List<Integer> serverPorts) throws Exception {
        ProcessBuilder builder = new ProcessBuilder(binary.toString(), "-db", "-f", CONFIG.toString())
                .redirectErrorStream(true);
        Map<String, String> env = builder.environment();
        env.put("KILN_LB_BIND", "127.0.0.1:" + port);
        for (int i = 0; i < serverPorts.size(); i++) {
            env.put("KILN_SERVER_" + (i + 1), "127.0.0.1:" + serverPorts.get(i));
        }
        Haproxy haproxy = new Haproxy(builder.start(), port);
        haproxy.awaitAnswering(Duration.ofSeconds(20));
        return haproxy;
    }

    private Haproxy(Process process, int port) {
        this.process = process;
        this.port = port;
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(),
                    StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    synchronized (lines) {
                        arrivals.add(System.nanoTime());
                        lines.add(line);
                    }
                }
            } catch (Exception e) {
                lines.add("(reading haproxy's output failed: " + e + ")");
            }
        }, "haproxy-log");
        reader.setDaemon(true);
        reader.start();
    }

    /** http://127.0.0.1:PORT, the balancer's address. */
    String base() {
        return "http://127.0.0.1:" + port;
    }

    /** Waits until the balancer passes /ready through to a server that answers 200. */
    private void awaitAnswering(Duration timeout) throws Exception {
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(2)).build();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new AssertionError("haproxy exited (" + process.exitValue() + "): " + lines());
            }
            try {
                HttpResponse<Void> ready = http.send(HttpRequest.newBuilder(URI.create(base() + "/ready"))
                        .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.discarding());
                if (ready.statusCode() == 200) {
                    return;
                }
            } catch (java.io.IOException e) {
                // not listening yet
            }
            Thread.sleep(50);
        }
        throw new AssertionError("haproxy never answered /ready with 200: " + lines());
    }

    List<String> lines() {
        synchronized (lines) {
            return List.copyOf(lines);
        }
    }

    /** The requests logged so far, in the order they ended. */
    List<LoggedRequest> requests() {
        List<LoggedRequest> requests = new ArrayList<>();
        for (String line : lines()) {
            Matcher m = REQUEST_LINE.matcher(line);
            if (m.find()) {
                requests.add(new LoggedRequest(m.group(1), m.group(2), Integer.parseInt(m.group(4)),
                        !m.group(3).isEmpty(), Integer.parseInt(m.group(5)), m.group(8)));
            }
        }
        return requests;
    }

    /**
     * When (System.nanoTime()) the first line matching {@code line} arrived after {@code since},
     * waiting up to {@code timeout} for it.
     */
    long awaitLine(Predicate<String> line, long since, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            synchronized (lines) {
                for (int i = 0; i < lines.size(); i++) {
                    if (arrivals.get(i) >= since && line.test(lines.get(i))) {
                        return arrivals.get(i);
                    }
                }
            }
            Thread.sleep(10);
        }
        throw new AssertionError("haproxy never logged the line awaited: " + lines());
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
