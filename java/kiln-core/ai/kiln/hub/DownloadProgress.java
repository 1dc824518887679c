package ai.kiln.hub;

import java.io.PrintStream;

/**
 * Progress of a model download on the console, drawn as the weight loading draws its own: a line
 * saying what is fetched, then once the download has run for a second a bar (redrawn in place on
 * a terminal, else a line every 25%), and a closing line with the bytes and rate. Several files
 * are received at once, so it is advanced from several threads.
 */
final class DownloadProgress {

    private static final long QUIET_NANOS = 1_000_000_000L;
    private static final int BAR_WIDTH = 30;

    private final PrintStream out;
    private final boolean interactive;
    private final long totalBytes;
    private final long start = System.nanoTime();
    private long doneBytes;
    private int lastPercent = -1;
    private boolean shown;

    private DownloadProgress(PrintStream out, boolean interactive, long totalBytes) {
        this.out = out;
        this.interactive = interactive;
        this.totalBytes = Math.max(1, totalBytes);
    }

    /** Progress printed on {@code out} (redrawn in place when it is stderr on a terminal); null prints nothing. */
    static DownloadProgress start(PrintStream out, String what, int files, long totalBytes) {
        boolean interactive = out == System.err && System.console() != null;
        DownloadProgress progress = new DownloadProgress(out, interactive, totalBytes);
        if (out != null) {
            out.printf("downloading %s: %d file%s, %.2f GB%n", what, files, files == 1 ? "" : "s", totalBytes / 1e9);
            out.flush();
        }
        return progress;
    }

    synchronized void advance(long bytes) {
        doneBytes += bytes;
        long elapsed = System.nanoTime() - start;
        if (out == null || elapsed < QUIET_NANOS) {
            return;
        }
        int percent = (int) Math.min(100, 100 * doneBytes / totalBytes);
        if (interactive ? percent != lastPercent : percent / 25 != lastPercent / 25) {
            int filled = percent * BAR_WIDTH / 100;
            out.print((interactive ? "\r" : "") + String.format("downloading [%s%s] %3d%% %.2f/%.2f GB %.1f MB/s",
                    "#".repeat(filled), " ".repeat(BAR_WIDTH - filled), percent, doneBytes / 1e9, totalBytes / 1e9,
                    doneBytes / 1e6 / (elapsed / 1e9)) + (interactive ? "" : "\n"));
            out.flush();
            lastPercent = percent;
            shown = true;
        }
    }

    synchronized void finish() {
        if (out != null && shown) {
            double seconds = (System.nanoTime() - start) / 1e9;
            out.printf("%sdownloaded %.2f GB in %.1f s (%.1f MB/s)%n", interactive ? "\n" : "", doneBytes / 1e9,
                    seconds, doneBytes / 1e6 / seconds);
            out.flush();
        }
    }
}
