package ai.kiln.bench;

import java.io.PrintWriter;

/**
 * {@code kiln bench}'s progress on stderr. On a terminal one line, rewritten in place with
 * {@code \r} as a run goes on and erased at the end, so that the results table starts clean;
 * elsewhere (a log file, a pipe) a plain line per step, and none of the in-between updates.
 */
final class BenchProgress {

    private final PrintWriter err;
    private final boolean inPlace;
    /** The length of the line on screen, which a shorter one must blank out. */
    private int shown;

    BenchProgress(PrintWriter err, boolean inPlace) {
        this.err = err;
        this.inPlace = inPlace;
    }

    boolean inPlace() {
        return inPlace;
    }

    /** A step begun or done: shown in place, or as a line of its own. */
    void step(String line) {
        if (inPlace) {
            rewrite(line);
        } else {
            err.println(line);
        }
        err.flush();
    }

    /** How a step is coming along: in place only (a log would fill with them). */
    void update(String line) {
        if (inPlace) {
            rewrite(line);
            err.flush();
        }
    }

    /** Erases the line on a terminal. */
    void clear() {
        if (inPlace && shown > 0) {
            err.print("\r" + " ".repeat(shown) + "\r");
            err.flush();
            shown = 0;
        }
    }

    private void rewrite(String line) {
        err.print("\r" + line + " ".repeat(Math.max(0, shown - line.length())));
        shown = line.length();
    }
}
