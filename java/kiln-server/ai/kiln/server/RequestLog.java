package ai.kiln.server;

import java.io.PrintStream;
import java.time.Instant;

/** One line per answered request on standard error: time, request id, method, path, status, duration, tokens. */
final class RequestLog {

    private final PrintStream out;

    RequestLog(PrintStream out) {
        this.out = out;
    }

    void request(Exchange exchange, String method, String path, int status, Throwable failure) {
        double millis = (System.nanoTime() - exchange.arrivalNanos) / 1e6;
        StringBuilder line = new StringBuilder(160);
        line.append(Instant.now()).append(" kiln-serve request_id=").append(exchange.requestId).append(' ')
                .append(method).append(' ').append(path).append(' ').append(status)
                .append(String.format(" %.1fms", millis));
        if (exchange.promptTokens >= 0) {
            line.append(" prompt_tokens=").append(exchange.promptTokens);
        }
        if (exchange.completionTokens >= 0) {
            line.append(" completion_tokens=").append(exchange.completionTokens);
        }
        if (failure != null) {
            line.append(" failed=\"").append(String.valueOf(failure.getMessage()).replace('"', '\'')).append('"');
        }
        out.println(line);
    }

    void info(String message) {
        out.println(Instant.now() + " kiln-serve " + message);
    }
}
