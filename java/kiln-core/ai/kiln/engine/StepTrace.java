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
 * {@code forward_us} (issuing the model's ops: a graph replay, or every kernel launch of an eager
 * step); {@code sample_us} (issuing the sampler and waiting for its ids: the device's remaining
 * work shows here); {@code output_us} (the scheduler's update and handing out the tokens).
 */
final class StepTrace implements AutoCloseable {

    static final String PROPERTY = "kiln.stepTrace";

    private final BufferedWriter out;
    private final long originNanos = System.nanoTime();
    private long step;

    private StepTrace(Path file) throws IOException {
        out = Files.newBufferedWriter(file, StandardCharsets.UTF_8);
        out.write("step,start_us,tokens,seqs,prefill_tokens,sampled,max_seq_len,schedule_us,forward_us,sample_us,"
                + "output_us\n");
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

    /** Records a step from its five instants (System.nanoTime). */
    void record(StepPlan plan, long start, long scheduled, long forwarded, long sampled, long end) {
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
            out.write(',');
            out.write(micros(scheduled - start));
            out.write(',');
            out.write(micros(forwarded - scheduled));
            out.write(',');
            out.write(micros(sampled - forwarded));
            out.write(',');
            out.write(micros(end - sampled));
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
