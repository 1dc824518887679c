package ai.kiln.server;

import ai.kiln.cli.KilnProcess;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code kiln serve} on the server fixture as a process of its own (stdout and stderr merged),
 * listening on a port of its choosing: its output lines as they come, and its address once it
 * says it. Closing kills it if it is still alive.
 */
final class ServeProcess implements AutoCloseable {

    static final Pattern LISTENING = Pattern.compile("listening on http://127\\.0\\.0\\.1:(\\d+)");

    final Process process;
    private final List<String> lines = Collections.synchronizedList(new ArrayList<>());
    private final CompletableFuture<Integer> port = new CompletableFuture<>();
    private final Thread reader;

    /** Starts {@code kiln serve} on the CPU with one thread and a 16 MiB cache, plus {@code extra}. */
    static ServeProcess start(String... extra) throws Exception {
        return onPort(0, extra);
    }

    /**
     * As {@link #start}, on {@code port} (0: one of its choosing); a fixed port lets a restarted
     * server come back where a balancer looks for it.
     */
    static ServeProcess onPort(int port, String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("serve", "--device", "cpu", "--model",
                ServerHarness.FIXTURE.dir().toAbsolutePath().toString(), "--port", Integer.toString(port),
                "--threads", "1", "--kv-cache-mib", "16"));
        args.addAll(List.of(extra));
        return new ServeProcess(KilnProcess.of(args.toArray(String[]::new)).redirectErrorStream(true).start());
    }

    private ServeProcess(Process process) {
        this.process = process;
        this.reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(),
                    StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    lines.add(line);
                    Matcher m = LISTENING.matcher(line);
                    if (m.find()) {
                        port.complete(Integer.parseInt(m.group(1)));
                    }
                }
            } catch (Exception e) {
                port.completeExceptionally(e);
            }
            port.completeExceptionally(new AssertionError("the server never said where it listens: " + lines));
        }, "kiln-serve-child-log");
        reader.setDaemon(true);
        reader.start();
    }

    /** http://127.0.0.1:PORT, once the server has said where it listens. */
    String base() throws Exception {
        return "http://127.0.0.1:" + port.get(60, TimeUnit.SECONDS);
    }

    /** The lines so far; after {@link #awaitOutputEnd}, all of them. */
    List<String> lines() {
        synchronized (lines) {
            return List.copyOf(lines);
        }
    }

    /** Waits for the process's output to end (it has exited). */
    void awaitOutputEnd() throws InterruptedException {
        reader.join(5000);
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
