package ai.kiln.progress;

import java.io.PrintStream;

/**
 * Progress of a long run of bytes on the console (weights loading, a model downloading): silent for
 * its first second, then a bar (redrawn in place on a terminal, else a line every 25%, so that a log
 * stays short), and a closing line with the bytes and the rate. Quick runs print nothing.
 * Thread-safe: a download advances it from several threads.
 */
public final class ByteProgress {

    private static final long QUIET_NANOS = 1_000_000_000L;
    private static final int BAR_WIDTH = 30;

    private final String barLabel;
    private final String closing;
    private final PrintStream out;
    private final boolean interactive;
    private final long totalBytes;
    private final long start = System.nanoTime();
    private long doneBytes;
    private int lastPercent = -1;
    private boolean shown;

    /**
     * @param barLabel    what the bar says is happening ("loading weights")
     * @param closing     the closing line's start, a format of the gigabytes done ("loaded %.2f GB of weights")
     * @param out         where it prints; null prints nothing
     * @param interactive redraw the bar in place (a terminal)
     */
    public ByteProgress(String barLabel, String closing, long totalBytes, PrintStream out, boolean interactive) {
        this.barLabel = barLabel;
        this.closing = closing;
        this.totalBytes = Math.max(1, totalBytes);
        this.out = out;
        this.interactive = interactive;
    }

    /** Progress on stderr, redrawn in place where stderr is a terminal. */
    public static ByteProgress onStderr(String barLabel, String closing, long totalBytes) {
        return new ByteProgress(barLabel, closing, totalBytes, System.err, System.console() != null);
    }

    public synchronized void advance(long bytes) {
        doneBytes += bytes;
        long elapsed = System.nanoTime() - start;
        if (out == null || elapsed < QUIET_NANOS) {
            return;
        }
        int percent = (int) Math.min(100, 100 * doneBytes / totalBytes);
        if (interactive ? percent != lastPercent : percent / 25 != lastPercent / 25) {
            int filled = percent * BAR_WIDTH / 100;
            out.print((interactive ? "\r" : "") + String.format("%s [%s%s] %3d%% %.1f/%.1f GB %.2f GB/s", barLabel,
                    "#".repeat(filled), " ".repeat(BAR_WIDTH - filled), percent, doneBytes / 1e9, totalBytes / 1e9,
                    doneBytes / 1e9 / (elapsed / 1e9)) + (interactive ? "" : "\n"));
            out.flush();
            lastPercent = percent;
            shown = true;
        }
    }

    public synchronized void finish() {
        if (out != null && shown) {
            double seconds = (System.nanoTime() - start) / 1e9;
            out.printf("%s" + closing + " in %.1f s (%.2f GB/s)%n", interactive ? "\n" : "", doneBytes / 1e9, seconds,
                    doneBytes / 1e9 / seconds);
            out.flush();
        }
    }
}
