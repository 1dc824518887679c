package ai.kiln.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpHeaderValue;
import org.eclipse.jetty.http.HttpVersion;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;

/**
 * One server-sent-events response. Whoever produces events (the engine's thread) never blocks:
 * {@link #send} queues the bytes and returns; one asynchronous write at a time drains the queue,
 * everything queued meanwhile going out in the next write. A client that stops reading lets the
 * queue grow to {@code maxPendingBytes}, and then the stream fails; so does a write that fails
 * (the client went away). Either way {@code onFailure} runs once, so the request is cancelled.
 */
final class SseStream {

    private static final byte[] HEARTBEAT = ": keep-alive\n\n".getBytes(StandardCharsets.UTF_8);

    private final Response response;
    private final Callback done;
    private final long maxPendingBytes;
    private final Runnable onFailure;

    private final ArrayDeque<byte[]> pending = new ArrayDeque<>();   // guarded by this
    private long pendingBytes;
    private boolean writing;
    private boolean finishing;
    private boolean lastWritten;
    private boolean over;                                            // completed or failed
    private volatile long lastActivityNanos = System.nanoTime();

    SseStream(Response response, Callback done, long maxPendingBytes, Runnable onFailure) {
        this.response = response;
        this.done = done;
        this.maxPendingBytes = maxPendingBytes;
        this.onFailure = onFailure;
        response.setStatus(200);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
        response.getHeaders().put("X-Accel-Buffering", "no");
        // NOTE: chunked also when the connection closes after this response (a request with
        // Connection: close, as a balancer in server-close mode sends). Jetty would send such a
        // stream close-delimited, and one cut off by a crash would then end as a complete one
        // does, with nothing to tell the client. HTTP/1.0 has no chunked coding.
        if (response.getRequest().getConnectionMetaData().getHttpVersion() == HttpVersion.HTTP_1_1) {
            response.getHeaders().put(HttpHeader.TRANSFER_ENCODING, HttpHeaderValue.CHUNKED.asString());
        }
    }

    /** Queues {@code data: <json>}; false when the stream has failed or is over. */
    boolean send(String json) {
        return queue(("data: " + json + "\n\n").getBytes(StandardCharsets.UTF_8));
    }

    /** Queues {@code data: [DONE]} and ends the response once everything queued is written. */
    void finish() {
        queue("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
        synchronized (this) {
            if (over) {
                return;
            }
            finishing = true;
        }
        pump();
    }

    /** Sends an SSE comment when nothing was written for {@code quietNanos}, so a gone client shows. */
    void heartbeat(long quietNanos) {
        if (System.nanoTime() - lastActivityNanos >= quietNanos) {
            queue(HEARTBEAT);
        }
    }

    synchronized boolean isOver() {
        return over;
    }

    /** Ends the stream abnormally: the connection is aborted and {@code onFailure} runs. */
    void fail(Throwable cause) {
        synchronized (this) {
            if (over) {
                return;
            }
            over = true;
            pending.clear();
            pendingBytes = 0;
        }
        try {
            onFailure.run();
        } finally {
            done.failed(cause);
        }
    }

    private boolean queue(byte[] bytes) {
        synchronized (this) {
            if (over || finishing) {
                return false;
            }
            // NOTE: a reader too slow for the queue ends the stream; dropping events would corrupt it.
            boolean overflow = pendingBytes + bytes.length > maxPendingBytes;
            if (!overflow) {
                pending.add(bytes);
                pendingBytes += bytes.length;
                lastActivityNanos = System.nanoTime();
                bytes = null;
            }
        }
        if (bytes != null) {
            fail(new IOException("the client reads too slowly: more than " + maxPendingBytes + " bytes unsent"));
            return false;
        }
        pump();
        return true;
    }

    private void pump() {
        ByteBuffer buffer;
        boolean last;
        synchronized (this) {
            if (writing || over || lastWritten) {
                return;
            }
            if (pending.isEmpty() && !finishing) {
                return;
            }
            buffer = ByteBuffer.allocate((int) pendingBytes);
            for (byte[] chunk : pending) {
                buffer.put(chunk);
            }
            buffer.flip();
            pending.clear();
            pendingBytes = 0;
            last = finishing;
            lastWritten = last;
            writing = true;
        }
        response.write(last, buffer, new Callback() {
            @Override
            public void succeeded() {
                lastActivityNanos = System.nanoTime();
                synchronized (SseStream.this) {
                    writing = false;
                    if (last) {
                        over = true;
                    }
                }
                if (last) {
                    done.succeeded();
                } else {
                    pump();
                }
            }

            @Override
            public void failed(Throwable x) {
                synchronized (SseStream.this) {
                    writing = false;
                }
                fail(x);
            }
        });
    }
}
