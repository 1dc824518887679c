package ai.kiln.server;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpHeaderValue;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.util.Callback;

/**
 * Reads request bodies without holding a thread: Jetty calls back when bytes arrive
 * ({@link Request#demand}), so a connection that sends its body slowly costs memory, not one of
 * the server's threads. A body is refused with 413 as soon as its declared or read length passes
 * {@code maxBytes}, and with 408 when it is not complete within the body timeout, or arrives
 * slower than the minimum rate once {@link KilnServer.ConnectionLimits#RATE_GRACE} has passed.
 * The bodies being read share one budget of buffered bytes, so that many connections each sending
 * a large body at the minimum rate cannot exhaust the heap: a body that would pass it gets 503.
 * Every refusal closes the connection ({@link Exchange#sendError}).
 */
final class BodyReader {

    /** Most bytes of a body that has not all arrived that are read and dropped to answer on a kept-alive connection. */
    static final long KEEP_ALIVE_DISCARD_BYTES = 64 << 10;
    /** How long a connection refused mid-body goes on reading (and dropping) before it is closed. */
    static final long LINGER_MILLIS = 2000;
    /** Most bytes dropped while lingering. */
    static final long LINGER_BYTES = 8L << 20;

    private final long maxBytes;
    private final KilnServer.ConnectionLimits limits;
    private final ConnectionGuard guard;
    private final long bufferBudget;                       // bytes all unfinished bodies may hold together
    private final AtomicLong buffered = new AtomicLong();  // bytes they hold now

    BodyReader(long maxBytes, KilnServer.ConnectionLimits limits, ConnectionGuard guard, long bufferBudget) {
        this.maxBytes = maxBytes;
        this.limits = limits;
        this.guard = guard;
        this.bufferBudget = bufferBudget;
    }

    /** Bytes the unfinished bodies hold now (for tests). */
    long bufferedBytes() {
        return buffered.get();
    }

    /** Takes {@code bytes} of the budget; false (taking nothing) when they do not fit. */
    private boolean reserve(long bytes) {
        while (true) {
            long now = buffered.get();
            if (now + bytes > bufferBudget) {
                return false;
            }
            if (buffered.compareAndSet(now, now + bytes)) {
                return true;
            }
        }
    }

    private ApiError overBudget() {
        return ApiError.unavailable("Request bodies being received hold the server's buffer budget of " + bufferBudget
                + " bytes; retry later.", "body_buffer_full");
    }

    /**
     * Reads the body of {@code exchange} and hands it to {@code onBody} on the thread that read its
     * end; a refused body is answered here and {@code onBody} never runs.
     */
    void read(Exchange exchange, Consumer<byte[]> onBody) {
        long declared = exchange.request.getLength();
        if (declared > maxBytes) {
            exchange.sendError(ApiError.tooLarge(maxBytes));
            return;
        }
        int initial = (int) Math.max(256, Math.min(declared, 64 << 10));
        if (!reserve(initial)) {
            exchange.sendError(overBudget());
            return;
        }
        Read read = new Read(exchange, onBody, initial);
        guard.watch(read);
        read.run();
    }

    private final class Read implements Runnable, ConnectionGuard.Deadline {
        private final Exchange exchange;
        private final Consumer<byte[]> onBody;
        private final long startNanos = System.nanoTime();
        private final AtomicBoolean over = new AtomicBoolean();
        private byte[] bytes;        // only the reading thread (Jetty's demand calls come one at a time)
        private int size;
        private volatile long received;
        private final AtomicLong held = new AtomicLong(); // bytes of the budget this body holds

        Read(Exchange exchange, Consumer<byte[]> onBody, int initialBytes) {
            this.exchange = exchange;
            this.onBody = onBody;
            this.bytes = new byte[initialBytes];
            held.set(initialBytes); // reserved in the budget by read()
        }

        /**
         * Gives what this body holds back to the budget. Safe from either side and more than once:
         * the timer may end the read while the reading side grows the buffer.
         */
        private void release() {
            buffered.addAndGet(-held.getAndSet(0));
        }

        @Override
        public void run() {
            try {
                readArrived();
            } catch (RuntimeException e) {
                // NOTE: a refusal on the timer may have completed the exchange under a pending read.
                refuse(ApiError.invalid("Could not read the request body: " + e.getMessage(), null), false);
            }
        }

        private void readArrived() {
            while (!over.get()) {
                Content.Chunk chunk = exchange.request.read();
                if (chunk == null) {
                    exchange.request.demand(this);
                    return;
                }
                if (Content.Chunk.isFailure(chunk)) {
                    Throwable failure = chunk.getFailure();
                    refuse(failure instanceof TimeoutException ? ApiError.requestTimeout(
                            "The request body stopped arriving: " + failure.getMessage() + ".")
                            : ApiError.invalid("Could not read the request body: " + failure.getMessage(), null),
                            false);
                    return;
                }
                boolean last = chunk.isLast();
                try {
                    ByteBuffer data = chunk.getByteBuffer();
                    int n = data.remaining();
                    if ((long) size + n > maxBytes) {
                        refuse(ApiError.tooLarge(maxBytes), false);
                        return;
                    }
                    if (size + n > bytes.length) {
                        int grown = (int) Math.min(maxBytes, Math.max(size + n, 2L * bytes.length));
                        if (!reserve(grown - bytes.length)) {
                            refuse(overBudget(), false);
                            return;
                        }
                        held.addAndGet(grown - bytes.length);
                        if (over.get()) { // the timer ended the read meanwhile
                            release();
                            return;
                        }
                        bytes = Arrays.copyOf(bytes, grown);
                    }
                    data.get(bytes, size, n);
                    size += n;
                    received = size;
                } finally {
                    chunk.release();
                }
                if (last) {
                    if (over.compareAndSet(false, true)) {
                        byte[] body = size == bytes.length ? bytes : Arrays.copyOf(bytes, size);
                        release();
                        onBody.accept(body);
                    }
                    return;
                }
            }
        }

        @Override
        public boolean check(long nowNanos) {
            if (over.get()) {
                return true;
            }
            long elapsed = nowNanos - startNanos;
            if (elapsed > limits.bodyTimeout().toNanos()) {
                refuse(ApiError.requestTimeout("The request body did not arrive within "
                        + limits.bodyTimeout().toMillis() / 1000.0 + " s (" + received + " bytes came)."), true);
                return true;
            }
            long minRate = limits.minBodyBytesPerSecond();
            if (minRate > 0 && elapsed > KilnServer.ConnectionLimits.RATE_GRACE.toNanos()
                    && received * 1_000_000_000.0 / elapsed < minRate) {
                refuse(ApiError.requestTimeout("The request body arrives at " + Math.round(received * 1e9 / elapsed)
                        + " bytes/s, below the server's minimum of " + minRate + " bytes/s."), true);
                return true;
            }
            return false;
        }

        /**
         * Answers {@code error} once. {@code fromTimer}: called beside the reading side (whose demand
         * may be pending), so the body must not be touched; the answer goes out and the connection is closed.
         */
        private void refuse(ApiError error, boolean fromTimer) {
            if (!over.compareAndSet(false, true)) {
                return;
            }
            release();
            if (fromTimer) {
                exchange.sendErrorAndClose(error);
            } else {
                exchange.sendError(error);
            }
        }
    }

    /**
     * Reads and drops what of the body has already arrived, up to {@link #KEEP_ALIVE_DISCARD_BYTES},
     * without waiting; true when that was all of it (the connection can then be kept alive).
     */
    static boolean consumeArrived(Request request) {
        long dropped = 0;
        while (dropped <= KEEP_ALIVE_DISCARD_BYTES) {
            Content.Chunk chunk = request.read();
            if (chunk == null) {
                return false;
            }
            if (Content.Chunk.isFailure(chunk)) {
                return chunk.isLast();
            }
            dropped += chunk.remaining();
            boolean last = chunk.isLast();
            chunk.release();
            if (last) {
                return true;
            }
        }
        return false;
    }

    /**
     * Completes {@code done} once the client has stopped sending the refused body (its end came),
     * {@link #LINGER_MILLIS} passed or {@link #LINGER_BYTES} were dropped, whichever is first.
     * NOTE: the answer is already written; closing at once, with body bytes still unread, makes the
     * kernel reset the connection, and the reset can destroy the answer before the client reads it.
     * Reading on a little, without holding a thread, lets it arrive.
     */
    static void lingerThenComplete(Request request, Callback done) {
        if (Request.getContentBytesRead(request) == 0
                && request.getHeaders().contains(HttpHeader.EXPECT, HttpHeaderValue.CONTINUE.asString())) {
            // NOTE: the client waits for 100 Continue before it sends the body, and a read would
            // now make Jetty send that interim answer after the final one: nothing is coming.
            done.succeeded();
            return;
        }
        AtomicBoolean completed = new AtomicBoolean();
        Runnable complete = () -> {
            if (completed.compareAndSet(false, true)) {
                done.succeeded();
            }
        };
        request.getComponents().getScheduler().schedule(complete, LINGER_MILLIS, TimeUnit.MILLISECONDS);
        new Runnable() {
            private long dropped;

            @Override
            public void run() {
                while (!completed.get()) {
                    Content.Chunk chunk = request.read();
                    if (chunk == null) {
                        request.demand(this);
                        return;
                    }
                    dropped += chunk.remaining();
                    boolean end = chunk.isLast() || Content.Chunk.isFailure(chunk);
                    chunk.release();
                    if (end || dropped > LINGER_BYTES) {
                        complete.run();
                        return;
                    }
                }
            }
        }.run();
    }
}
