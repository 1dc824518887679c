package ai.kiln.model;

import java.io.PrintStream;

/**
 * Progress of a weight load on the console: once a load has run for a second, a bar on stderr
 * (redrawn in place where stderr is a terminal), and a closing line with the bytes and rate.
 * Quick loads stay silent.
 */
final class LoadProgress {

    private static final long QUIET_NANOS = 1_000_000_000L;
    private static final int BAR_WIDTH = 30;

    private final PrintStream out;
    private final boolean interactive;
    private final long totalBytes;
    private final long start = System.nanoTime();
    private long doneBytes;
    private int lastPercent = -1;
    private boolean shown;

    LoadProgress(long totalBytes, PrintStream out, boolean interactive) {
        this.totalBytes = Math.max(1, totalBytes);
        this.out = out;
        this.interactive = interactive;
    }

    static LoadProgress onStderr(long totalBytes) {
        return new LoadProgress(totalBytes, System.err, System.console() != null);
    }

    void advance(long bytes) {
        doneBytes += bytes;
        long elapsed = System.nanoTime() - start;
        if (elapsed < QUIET_NANOS) {
            return;
        }
        int percent = (int) Math.min(100, 100 * doneBytes / totalBytes);
        // Redraw in place on a terminal; elsewhere (a log) a line every 25%.
        if (interactive ? percent != lastPercent : percent / 25 != lastPercent / 25) {
            int filled = percent * BAR_WIDTH / 100;
            out.print((interactive ? "\r" : "") + String.format("loading weights [%s%s] %3d%% %.1f/%.1f GB %.2f GB/s",
                    "#".repeat(filled), " ".repeat(BAR_WIDTH - filled), percent, doneBytes / 1e9, totalBytes / 1e9,
                    doneBytes / 1e9 / (elapsed / 1e9)) + (interactive ? "" : "\n"));
            out.flush();
            lastPercent = percent;
            shown = true;
        }
    }

    void finish() {
        if (shown) {
            double seconds = (System.nanoTime() - start) / 1e9;
            out.printf("%sloaded %.2f GB of weights in %.1f s (%.2f GB/s)%n", interactive ? "\n" : "", doneBytes / 1e9,
                    seconds, doneBytes / 1e9 / seconds);
        }
    }
}
