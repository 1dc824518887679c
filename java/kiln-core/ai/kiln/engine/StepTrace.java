package ai.kiln.engine;

import ai.kiln.scheduler.StepPlan;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One CSV line per engine step, for profiling a serving load: what the step carried and where its
 * time went. Turned on by the system property {@code kiln.stepTrace} (a file path); off, the
 * engine loop pays one null check per step.
 *
 * <p>Columns: {@code step}; {@code start_us} (since the trace opened); {@code tokens},
 * {@code seqs}, {@code prefill_tokens}, {@code sampled} (the step's shape); {@code max_seq_len}
 * (the longest context the step attends over); {@code schedule_us} (planning);
 * {@code launch_us} (issuing the model's ops and the sampler's: a graph replay, or every kernel
 * launch of an eager step); {@code overlapped_us} (handing out the previous step's tokens while
 * the device computes this one); {@code wait_us} (waiting for this step's ids: the device's
 * remaining work); {@code update_us} (the scheduler's update, and handing out this step's tokens
 * when no step follows). The device is busy through launch, overlapped and wait; schedule and
 * update are host time between steps.
 */
final class StepTrace implements AutoCloseable {

    static final String PROPERTY = "kiln.stepTrace";

    private final BufferedWriter out;
    private final long originNanos = System.nanoTime();
    private long step;

    private StepTrace(Path file) throws IOException {
        out = Files.newBufferedWriter(file, StandardCharsets.UTF_8);
        out.write("step,start_us,tokens,seqs,prefill_tokens,sampled,max_seq_len,schedule_us,launch_us,overlapped_us,"
                + "wait_us,update_us\n");
    }

    /** The trace the system property asks for, or null when it names none. */
    static StepTrace fromSystemProperty() {
        String path = System.getProperty(PROPERTY);
        if (path == null || path.isBlank()) {
            return null;
        }
        try {
            return new StepTrace(Path.of(path));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open the step trace " + path + " (-D" + PROPERTY + ")", e);
        }
    }

    /** Records a step from its six instants (System.nanoTime). */
    void record(StepPlan plan, long start, long scheduled, long launched, long overlapped, long collected, long end) {
        try {
            out.write(Long.toString(step++));
            out.write(',');
            out.write(Long.toString((start - originNanos) / 1000));
            out.write(',');
            out.write(Integer.toString(plan.numTokens()));
            out.write(',');
            out.write(Integer.toString(plan.numSeqs()));
            out.write(',');
            out.write(Integer.toString(plan.numPrefillTokens()));
            out.write(',');
            out.write(Integer.toString(plan.numSampling()));
            out.write(',');
            out.write(Integer.toString(plan.batch().maxSeqLen()));
            long[] instants = {start, scheduled, launched, overlapped, collected, end};
            for (int i = 1; i < instants.length; i++) {
                out.write(',');
                out.write(micros(instants[i] - instants[i - 1]));
            }
            out.write('\n');
        } catch (IOException e) {
            throw new UncheckedIOException("writing the step trace failed", e);
        }
    }

    private static String micros(long nanos) {
        return Long.toString(nanos / 1000);
    }

    /** Writes out what is buffered (called when the engine goes idle). */
    void flush() {
        try {
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("writing the step trace failed", e);
        }
    }

    @Override
    public void close() {
        try {
            out.close();
        } catch (IOException e) {
            throw new UncheckedIOException("closing the step trace failed", e);
        }
    }
}
