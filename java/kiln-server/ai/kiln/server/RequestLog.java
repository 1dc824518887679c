package ai.kiln.server;

import java.io.PrintStream;
import java.time.Instant;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.spi.LoggingEventBuilder;

/**
 * The server's log: one line per answered request (request id, method, path, status, duration,
 * tokens), and the server's own events (listening, serving, draining).
 *
 * <p>Through SLF4J: requests under the logger {@value #ACCESS_LOGGER}, events under
 * {@code ai.kiln.server.KilnServer}. Each request line also carries its fields as SLF4J key-value
 * pairs, so that a structured backend (kiln serve's {@code --log-format json}) writes them as
 * fields; the message holds the same fields as text, for a plain backend. This library brings no
 * SLF4J backend: the application picks one (kiln-cli brings Logback).
 *
 * <p>Given a stream instead, the same lines go to it as text, each after its time (tests that
 * read the log or keep it quiet).
 */
final class RequestLog {

    /** The logger of the request lines, apart from the server's events so that either can be turned off. */
    static final String ACCESS_LOGGER = "ai.kiln.server.access";

    private final PrintStream out;
    private final Logger access;
    private final Logger events;

    /** A log through SLF4J. */
    RequestLog() {
        this.out = null;
        this.access = LoggerFactory.getLogger(ACCESS_LOGGER);
        this.events = LoggerFactory.getLogger(KilnServer.class);
    }

    /** A log written as text to {@code out}, SLF4J left out. */
    RequestLog(PrintStream out) {
        this.out = out;
        this.access = null;
        this.events = null;
    }

    void request(Exchange exchange, String method, String path, int status, Throwable failure) {
        double millis = Math.round((System.nanoTime() - exchange.arrivalNanos) / 1e5) / 10.0;
        String error = failure == null ? null : String.valueOf(failure.getMessage());
        StringBuilder line = new StringBuilder(160);
        line.append("request_id=").append(exchange.requestId).append(' ')
                .append(method).append(' ').append(path).append(' ').append(status)
                .append(String.format(Locale.ROOT, " %.1fms", millis));
        if (exchange.promptTokens >= 0) {
            line.append(" prompt_tokens=").append(exchange.promptTokens);
        }
        if (exchange.completionTokens >= 0) {
            line.append(" completion_tokens=").append(exchange.completionTokens);
        }
        if (error != null) {
            line.append(" failed=\"").append(error.replace('"', '\'')).append('"');
        }
        if (out != null) {
            print(line.toString());
            return;
        }
        LoggingEventBuilder event = (failure == null ? access.atInfo() : access.atWarn())
                .addKeyValue("request_id", exchange.requestId).addKeyValue("method", method)
                .addKeyValue("path", path).addKeyValue("status", status).addKeyValue("duration_ms", millis);
        if (exchange.promptTokens >= 0) {
            event = event.addKeyValue("prompt_tokens", exchange.promptTokens);
        }
        if (exchange.completionTokens >= 0) {
            event = event.addKeyValue("completion_tokens", exchange.completionTokens);
        }
        if (error != null) {
            event = event.addKeyValue("error", error);
        }
        event.log(line.toString());
    }

    void info(String message) {
        if (out != null) {
            print(message);
        } else {
            events.info(message);
        }
    }

    /** A request that failed inside the server (answered 500): the message, with its stack trace. */
    void internalError(String requestId, RuntimeException e) {
        if (out != null) {
            print("request_id=" + requestId + " internal error: " + e);
        } else {
            events.atError().addKeyValue("request_id", requestId).setCause(e)
                    .log("request_id=" + requestId + " internal error: " + e);
        }
    }

    private void print(String message) {
        out.println(Instant.now() + " kiln-serve " + message);
    }
}
