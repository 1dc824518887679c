package ai.kiln.hub;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * A real nginx, Debian's package, started on a loopback port with a configuration written here,
 * serving one directory as a plain static file server: {@code /models/} (the directory), {@code
 * /slow/} (the same, each answer limited to {@code slowBytesPerSecond}), {@code /forbidden/}
 * ({@code deny all}: 403). Each request goes to an access log with its Range header, which {@link
 * #requests} reads back.
 */
final class NginxServer implements AutoCloseable {

    /** A request as nginx logged it; range is "-" where none was sent. */
    record Request(String method, String uri, int status, String range) {
    }

    private final Path workDir;
    private final int port;
    private final Process process;

    private NginxServer(Path workDir, int port, Process process) {
        this.workDir = workDir;
        this.port = port;
        this.process = process;
    }

    /** The nginx binary on PATH or in /usr/sbin (where Debian's package puts it). */
    static Optional<Path> binary() {
        List<Path> candidates = new ArrayList<>();
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (!dir.isEmpty()) {
                candidates.add(Path.of(dir, "nginx"));
            }
        }
        candidates.add(Path.of("/usr/sbin/nginx"));
        return candidates.stream().filter(Files::isExecutable).findFirst();
    }

    /** Skips the calling test where no nginx is installed. */
    static Path requireBinary() {
        Optional<Path> nginx = binary();
        assumeTrue(nginx.isPresent(), "nginx not found on PATH or in /usr/sbin: these tests need a real static file"
                + " server (apt-get install nginx; .ci/run installs it)");
        return nginx.get();
    }

    /** A free loopback port (nothing listens on it once this returns). */
    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    /**
     * Starts nginx serving {@code root} on {@code port}, its configuration, logs and pid file in
     * {@code workDir}; returns once it accepts connections.
     *
     * @param slowBytesPerSecond the rate of answers under /slow/ (0: unlimited)
     */
    static NginxServer start(Path root, Path workDir, int port, long slowBytesPerSecond) throws IOException,
            InterruptedException {
        Path nginx = requireBinary();
        Files.createDirectories(workDir.resolve("temp"));
        String served = root.toAbsolutePath() + "/";
        String config = """
                daemon off;
                master_process off;
                worker_processes 1;
                pid %1$s/nginx.pid;
                error_log %1$s/error.log warn;
                events { worker_connections 64; }
                http {
                    log_format kiln '$request_method $uri $status "$http_range"';
                    access_log %1$s/access.log kiln;
                    client_body_temp_path %1$s/temp/body;
                    proxy_temp_path %1$s/temp/proxy;
                    fastcgi_temp_path %1$s/temp/fastcgi;
                    uwsgi_temp_path %1$s/temp/uwsgi;
                    scgi_temp_path %1$s/temp/scgi;
                    default_type application/octet-stream;
                    server {
                        listen 127.0.0.1:%2$d;
                        location /models/ { alias %3$s; }
                        location /slow/ { alias %3$s; %4$s }
                        location /forbidden/ { deny all; }
                    }
                }
                """.formatted(workDir.toAbsolutePath(), port, served,
                slowBytesPerSecond > 0 ? "limit_rate " + slowBytesPerSecond + ";" : "");
        Path configFile = workDir.resolve("nginx.conf");
        Files.writeString(configFile, config, StandardCharsets.UTF_8);
        Process process = new ProcessBuilder(nginx.toString(), "-p", workDir.toAbsolutePath().toString(), "-c",
                configFile.toAbsolutePath().toString(), "-e", workDir.resolve("error.log").toAbsolutePath().toString())
                .redirectErrorStream(true).redirectOutput(workDir.resolve("stdout.log").toFile()).start();
        NginxServer server = new NginxServer(workDir, port, process);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IOException("nginx exited with " + process.exitValue() + ": " + server.log());
            }
            try (Socket probe = new Socket()) {
                probe.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 200);
                return server;
            } catch (IOException notYet) {
                Thread.sleep(20);
            }
        }
        server.close();
        throw new IOException("nginx did not listen on port " + port + " within 10 s: " + server.log());
    }

    /** {@code http://127.0.0.1:PORT} + {@code path}. */
    String url(String path) {
        return URI.create("http://127.0.0.1:" + port).resolve(path).toString();
    }

    int port() {
        return port;
    }

    /** What nginx logged so far, one entry a request. */
    List<Request> requests() throws IOException {
        Path log = workDir.resolve("access.log");
        if (!Files.exists(log)) {
            return List.of();
        }
        List<Request> requests = new ArrayList<>();
        for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
            String[] parts = line.split(" ", 4);
            requests.add(new Request(parts[0], parts[1], Integer.parseInt(parts[2]),
                    parts[3].substring(1, parts[3].length() - 1)));
        }
        return requests;
    }

    /** Kills nginx at once, as a server that dies does: transfers in flight break off. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }

    private String log() {
        try {
            return Files.readString(workDir.resolve("stdout.log")) + (Files.exists(workDir.resolve("error.log"))
                    ? Files.readString(workDir.resolve("error.log")) : "");
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    @Override
    public void close() {
        try {
            kill();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
