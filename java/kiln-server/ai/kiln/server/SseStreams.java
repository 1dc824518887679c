package ai.kiln.server;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.eclipse.jetty.server.Request;

/**
 * The server's open event streams: each generation answered as a stream opens one here, and the
 * server's heartbeat visits them all, so a quiet stream shows whether its client is still there.
 */
final class SseStreams {

    private final Set<SseStream> open = ConcurrentHashMap.newKeySet();
    private final long maxBufferBytes;

    /** {@code maxBufferBytes}: unsent bytes one stream may hold before its slow reader is cut off. */
    SseStreams(long maxBufferBytes) {
        this.maxBufferBytes = maxBufferBytes;
    }

    /** Opens the stream answering {@code exchange}; a client gone or too slow cancels {@code call}. */
    SseStream open(Exchange exchange, GenerationCall call) {
        SseStream sse = new SseStream(exchange.response, exchange.callback, maxBufferBytes, call::cancelForGoneClient);
        open.add(sse);
        Request.addCompletionListener(exchange.request, failure -> open.remove(sse));
        return sse;
    }

    /** Sends a heartbeat on every stream quiet for {@code quietNanos}, and forgets those that are over. */
    void heartbeat(long quietNanos) {
        for (SseStream stream : open) {
            if (stream.isOver()) {
                open.remove(stream);
            } else {
                stream.heartbeat(quietNanos);
            }
        }
    }
}
