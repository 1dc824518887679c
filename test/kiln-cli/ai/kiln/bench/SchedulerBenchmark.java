package ai.kiln.bench;

import ai.kiln.kvcache.KvCacheManager;
import ai.kiln.sampling.SamplerOutput;
import ai.kiln.api.SamplingParams;
import ai.kiln.sampling.SequenceSampling;
import ai.kiln.scheduler.FinishCause;
import ai.kiln.scheduler.Scheduler;
import ai.kiln.scheduler.SchedulerConfig;
import ai.kiln.scheduler.Sequence;
import ai.kiln.scheduler.StepPlan;
import java.util.ArrayDeque;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The Java-side cost of one engine step without the model: {@link Scheduler#schedule()} (the
 * plan, slot mapping, block-table rows, the packed {@link ai.kiln.model.ForwardBatch} and the
 * sampling rows) plus {@link Scheduler#update} (computed tokens, prefix-cache registration of
 * full blocks, appending the sampled tokens, stop checks). The sampled tokens are given.
 *
 * <ul>
 *   <li>{@code decode}: 256 running sequences, each decoding one token a step, from contexts of
 *       1024 tokens (they grow during an iteration; every 16th step of a sequence takes a block).
 *   <li>{@code mixed}: up to 256 running sequences finishing after 64 to 512 tokens and replaced by
 *       new requests with 1024-token prompts, chunked into what the 2048-token budget leaves
 *       after the decodes (a steady state of about 250 decodes plus one or two prompt chunks).
 * </ul>
 *
 * <p>Run: see docs/performance.md, section Scheduler.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 400, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 10, time = 200, timeUnit = TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms3g", "-Xmx3g"})
public class SchedulerBenchmark {

    static final int SEQS = 256;
    static final int BLOCK = 16;
    static final int BUDGET = 2048;
    static final int PROMPT = 1024;
    static final int MAX_MODEL_LEN = 65536;

    @Param({"decode", "mixed"})
    public String batch;

    private Scheduler scheduler;
    private SamplerOutput sampled;
    private SplittableRandom random;
    private final ArrayDeque<Sequence> arrivals = new ArrayDeque<>();
    private long nextId;
    private boolean mixed;
    private int steps;
    private long tokens;
    private long sampledRows;

    @Setup(Level.Trial)
    public void allocate() {
        mixed = batch.equals("mixed");
        random = new SplittableRandom(1);
        // Room for every sequence to grow through a whole iteration (decode) or to its end (mixed).
        int numBlocks = 1 + (mixed ? 2 * SEQS * (PROMPT + 512) / BLOCK : SEQS * (MAX_MODEL_LEN / BLOCK));
        KvCacheManager kv = new KvCacheManager(numBlocks, BLOCK, true);
        scheduler = new Scheduler(new SchedulerConfig(BUDGET, SEQS, MAX_MODEL_LEN), kv, new int[] {2});
        sampled = new SamplerOutput(SEQS);
        for (int r = 0; r < SEQS; r++) {
            sampled.set(r, 3 + r, null);
        }
    }

    /** Every iteration starts from the same state: an empty pool, then 256 sequences prefilled. */
    @Setup(Level.Iteration)
    public void setUp() {
        scheduler.finishAll(FinishCause.ABORT, "next iteration");
        scheduler.kvCache().pool().resetPrefixCache();
        random = new SplittableRandom(1);
        arrivals.clear();
        for (int i = 0; i < (mixed ? 4096 : 0); i++) {
            arrivals.add(newSequence());
        }
        for (int i = 0; i < SEQS; i++) {
            submit();
        }
        // Prefill everything, so that the measurement starts from a decoding batch.
        while (scheduler.numWaiting() > 0 || hasPrefill()) {
            scheduler.update(scheduler.schedule(), sampled);
        }
        if (mixed) {
            for (int i = 0; i < 8; i++) {
                submit();
            }
        }
        steps = 0;
        tokens = 0;
        sampledRows = 0;
    }

    private boolean hasPrefill() {
        for (Sequence seq : scheduler.running()) {
            if (seq.numComputedTokens() < seq.numPromptTokens()) {
                return true;
            }
        }
        return false;
    }

    /** A new request: its sequence is made in advance, as Engine.submit does on the caller's thread. */
    private void submit() {
        Sequence seq = arrivals.pollFirst();
        scheduler.add(seq != null ? seq : newSequence());
    }

    private Sequence newSequence() {
        long id = nextId++;
        int maxTokens = mixed ? 64 + random.nextInt(449) : MAX_MODEL_LEN - PROMPT;
        int[] prompt = new int[PROMPT];
        for (int i = 0; i < PROMPT; i++) {
            prompt[i] = (int) ((id * 7919 + i * 31) % 100_000);
        }
        SamplingParams params = SamplingParams.builder().temperature(0).maxTokens(maxTokens).build();
        return new Sequence(id, "r" + id, 0, prompt, maxTokens, new int[0],
                new SequenceSampling(ai.kiln.engine.ApiMapping.samplerSettings(params), id, new int[0]), null, null);
    }

    @Benchmark
    public StepPlan step() {
        StepPlan plan = scheduler.schedule();
        scheduler.update(plan, sampled);
        steps++;
        tokens += plan.numTokens();
        sampledRows += plan.numSampling();
        if (mixed) {
            // Finished requests are replaced by new arrivals, keeping eight waiting.
            for (int i = scheduler.numRunning() + scheduler.numWaiting(); i < SEQS + 8; i++) {
                submit();
            }
        }
        return plan;
    }

    @TearDown(Level.Iteration)
    public void report() {
        if (steps > 0 && System.getProperty("kiln.bench.verbose") != null) {
            System.out.printf("%n  %s: %d steps, %.1f tokens and %.1f sampled sequences per step, %d running%n", batch,
                    steps, (double) tokens / steps, (double) sampledRows / steps, scheduler.numRunning());
        }
    }
}
