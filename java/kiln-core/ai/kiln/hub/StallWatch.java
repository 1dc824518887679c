package ai.kiln.hub;

import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * Closes a download's body stream once no byte has arrived for the timeout, so that the blocked
 * read fails (and the download counts as broken off, to be resumed) instead of waiting forever on
 * a server that stalls: the HTTP client's own timeout covers only the wait for the headers.
 */
final class StallWatch implements AutoCloseable {

    /** One daemon thread checks every download's watch. */
    private static final ScheduledExecutorService CHECKS = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread thread = new Thread(r, "kiln-download-stall-watch");
        thread.setDaemon(true);
        return thread;
    });

    private final InputStream body;
    private final long timeoutNanos;
    private final ScheduledFuture<?> check;
    private volatile long lastProgressNanos = System.nanoTime();
    private volatile boolean stalled;

    StallWatch(InputStream body, Duration timeout) {
        this.body = body;
        this.timeoutNanos = timeout.toNanos();
        long period = Math.max(1, timeout.toMillis() / 4);
        this.check = CHECKS.scheduleAtFixedRate(this::checkOnce, period, period, TimeUnit.MILLISECONDS);
    }

    /** Bytes arrived: the wait starts again. */
    void progressed() {
        lastProgressNanos = System.nanoTime();
    }

    /** Whether the watch closed the stream (the read failed because the server stalled). */
    boolean stalled() {
        return stalled;
    }

    private void checkOnce() {
        if (!stalled && System.nanoTime() - lastProgressNanos > timeoutNanos) {
            stalled = true;
            try {
                body.close();
            } catch (IOException ignored) {
                // The read it unblocks reports the failure.
            }
        }
    }

    @Override
    public void close() {
        check.cancel(false);
    }
}
