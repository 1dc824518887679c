package ai.kiln.engine;

import ai.kiln.api.EngineException;
import ai.kiln.api.EngineMetrics;
import ai.kiln.api.GenerateResult;
import ai.kiln.kvcache.KvCacheManager;
import ai.kiln.sampling.SamplerOutput;
import ai.kiln.scheduler.FinishCause;
import ai.kiln.scheduler.Scheduler;
import ai.kiln.scheduler.Sequence;
import ai.kiln.scheduler.StepPlan;
import ai.kiln.tensor.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.locks.LockSupport;

/**
 * The engine loop: one thread that takes submitted requests and cancels from its inbox, asks the
 * scheduler for the next batch, runs the model and the sampler, and hands the step's tokens to
 * the {@link OutputProcessor}. It ends requests (finished, aborted or failed) and completes their
 * streams only after the metrics show them gone. Everything but the inbox and the close signal
 * is touched by this thread alone.
 */
final class StepLoop implements Runnable {

    private sealed interface Command permits Submit, Cancel {
    }

    private record Submit(RequestState request) implements Command {
    }

    private record Cancel(RequestState request, String reason) implements Command {
    }

    private final LoadedModel loaded;
    private final Scheduler scheduler;
    private final Duration shutdownGrace;
    private final Thread thread;
    private final ConcurrentLinkedQueue<Command> inbox = new ConcurrentLinkedQueue<>();
    private volatile boolean closing;
    private boolean accepting = true; // guarded by this: whether submit may still queue
    private volatile long closeDeadlineNanos;
    private volatile Throwable failure;
    private volatile EngineMetrics metrics;

    // Engine loop state.
    private final Set<RequestState> inFlight = Collections.newSetFromMap(new IdentityHashMap<>());
    // Two sampler outputs, used in turn: one step's tokens wait to be handed out while the next step runs.
    private final SamplerOutput[] samplerOutputs;
    private int nextSamplerOutput;
    private StepPlan pendingPlan;          // the last step computed, its tokens not yet handed out (or null)
    private SamplerOutput pendingSampled;  // that step's tokens
    private final OutputProcessor outputs;
    private final List<Runnable> ended = new ArrayList<>(); // completions of requests ended this iteration
    private long prefillTokens;
    private long requestsFinished;
    private long steps;
    private long hostNanos;   // summed over steps: scheduling, bookkeeping and output handling
    private long modelNanos;  // summed over steps: forward and sampling, device waits included
    private final StepTrace trace = StepTrace.fromSystemProperty(); // null unless -Dkiln.stepTrace
    /**
     * -Dkiln.profileSteps=FIRST-LAST: the device profiler collects during those engine steps alone
     * (counted from 0), e.g. one decode step under Nsight Compute's --profile-from-start off.
     */
    private final long[] profiledSteps = profiledSteps(System.getProperty("kiln.profileSteps"));

    StepLoop(LoadedModel loaded, Runnable onExit) {
        this.loaded = loaded;
        this.scheduler = loaded.scheduler();
        this.shutdownGrace = loaded.options().shutdownGrace();
        int maxSeqs = loaded.options().maxRunningSeqs();
        this.samplerOutputs = new SamplerOutput[] {new SamplerOutput(maxSeqs), new SamplerOutput(maxSeqs)};
        this.outputs = new OutputProcessor(scheduler);
        publishMetrics();
        this.thread = new Thread(() -> {
            try {
                run();
            } finally {
                onExit.run();
            }
        }, "kiln-engine-loop");
        thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    // ---- any thread --------------------------------------------------------------------------

    /**
     * Queues a request for the loop; false once the loop takes no more (it is ending, or it
     * failed), in which case nothing was queued.
     */
    boolean submit(RequestState request) {
        synchronized (this) {
            if (!accepting) {
                return false;
            }
            inbox.add(new Submit(request));
        }
        LockSupport.unpark(thread);
        return true;
    }

    void cancel(RequestState request, String reason) {
        enqueue(new Cancel(request, reason));
    }

    /** The loop's own failure, or null. */
    Throwable failure() {
        return failure;
    }

    EngineMetrics metrics() {
        return metrics;
    }

    /**
     * Lets requests in flight (and those accepted before the loop stops taking them) finish within
     * the grace period, then aborts the rest, and waits for the loop to end.
     */
    void closeAndJoin() {
        synchronized (this) {
            if (!closing) {
                closeDeadlineNanos = System.nanoTime() + shutdownGrace.toNanos();
                closing = true;
            }
        }
        LockSupport.unpark(thread);
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void enqueue(Command command) {
        inbox.add(command);
        LockSupport.unpark(thread);
    }

    // ---- the loop thread ---------------------------------------------------------------------

    @Override
    public void run() {
        try {
            while (true) {
                drainInbox();
                if (closing) {
                    if (System.nanoTime() - closeDeadlineNanos >= 0) {
                        handOutPending();
                        stopAccepting();
                        drainInbox();
                        abortAll("the engine closed before the request finished (grace period " + shutdownGrace + ")");
                        break;
                    }
                    if (!scheduler.hasWork()) {
                        // Requests accepted just before the last look get the grace period too.
                        stopAccepting();
                        drainInbox();
                        if (!scheduler.hasWork()) {
                            break;
                        }
                    }
                }
                if (!scheduler.hasWork()) {
                    if (trace != null) {
                        trace.flush(); // idle: the trace so far becomes readable
                    }
                    LockSupport.parkNanos(this, closing ? 1_000_000 : 100_000_000);
                    continue;
                }
                step();
            }
        } catch (Throwable e) {
            failure = e;
            stopAccepting();
            failAll(e);
        } finally {
            try {
                publishMetrics();
            } finally {
                deliverEnded();
                if (trace != null) {
                    trace.close();
                }
            }
        }
    }

    private void stopAccepting() {
        synchronized (this) {
            accepting = false;
        }
    }

    private void drainInbox() {
        Command command;
        boolean any = false;
        while ((command = inbox.poll()) != null) {
            any = true;
            if (command instanceof Submit submit) {
                RequestState state = submit.request();
                inFlight.add(state);
                for (Sequence seq : state.seqs) {
                    scheduler.add(seq);
                }
            } else if (command instanceof Cancel cancel) {
                handOutPending(); // the request keeps the tokens computed before its cancel
                abort(cancel.request(), cancel.reason());
            }
        }
        if (any) {
            publishMetrics();
            deliverEnded();
        }
    }

    /**
     * Runs one step, overlapped with the host's work on the step before: the step is planned and
     * launched on the device, then the previous step's tokens are handed out (detokenized, checked
     * for stop strings, streamed) while the device computes, and only then are this step's ids
     * waited for. The scheduler has this step's tokens before the next one is planned; handing
     * them out waits for the next step's launch (or happens at once when no step follows).
     *
     * <p>A stop string found in the previous step's text ends a sequence this step also computes:
     * its token from this step is dropped, as vLLM's asynchronous scheduling drops it.
     */
    private void step() {
        if (profiledSteps != null && steps == profiledSteps[0]) {
            loaded.backend().setProfilerCollecting(true);
        }
        long stepStart = System.nanoTime();
        StepPlan plan = scheduler.schedule();
        if (plan.isEmpty()) {
            handOutPending();
            publishMetrics();
            deliverEnded();
            return; // a step that only preempted; the next one admits
        }
        long now = System.nanoTime();
        for (int i = 0; i < plan.numSeqs(); i++) {
            RequestState state = (RequestState) plan.seq(i).owner();
            if (state.firstScheduledNanos < 0) {
                state.firstScheduledNanos = now;
            }
        }
        SamplerOutput sampled = samplerOutputs[nextSamplerOutput];
        nextSamplerOutput ^= 1;
        long launchStart = System.nanoTime();
        try {
            Tensor logits = loaded.model().forward(plan.batch(), loaded.cache());
            loaded.sampler().launch(logits, plan.sampling());
        } catch (RuntimeException e) {
            // NOTE: scheduler.update must not run: the step's tokens were never computed.
            handOutPending();
            failStep(plan, e);
            return;
        }
        long launched = System.nanoTime();
        handOutPending();
        long handedOut = System.nanoTime();
        try {
            loaded.sampler().collect(sampled);
        } catch (RuntimeException e) {
            failStep(plan, e);
            return;
        }
        long collected = System.nanoTime();
        steps++;
        prefillTokens += plan.numPrefillTokens();
        scheduler.update(plan, sampled);
        pendingPlan = plan;
        pendingSampled = sampled;
        if (!scheduler.hasWork()) {
            handOutPending(); // no step follows to overlap with
        }
        long stepEnd = System.nanoTime();
        // NOTE: the model's share is issuing its ops and waiting for the device (sampling reads the
        // ids back); the rest is Java's own work: planning, bookkeeping, outputs (mostly while the
        // device computed).
        modelNanos += (launched - launchStart) + (collected - handedOut);
        hostNanos += (launchStart - stepStart) + (handedOut - launched) + (stepEnd - collected);
        if (trace != null) {
            trace.record(plan, stepStart, launchStart, launched, handedOut, collected, stepEnd);
        }
        if (profiledSteps != null && steps - 1 == profiledSteps[1]) {
            loaded.backend().setProfilerCollecting(false);
        }
        publishMetrics();
        deliverEnded();
    }

    /** {FIRST, LAST} of a "FIRST-LAST" range of steps, or null when none is given. */
    static long[] profiledSteps(String range) {
        if (range == null || range.isBlank()) {
            return null;
        }
        String[] ends = range.trim().split("-");
        try {
            long first = Long.parseLong(ends[0]);
            long last = ends.length == 2 ? Long.parseLong(ends[1]) : first;
            if (ends.length > 2 || first < 0 || last < first) {
                throw new NumberFormatException();
            }
            return new long[] {first, last};
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-Dkiln.profileSteps must be FIRST-LAST (steps from 0), got " + range);
        }
    }

    /** Hands out the tokens of the last step computed, if not done yet: outputs, finished requests, laggards. */
    private void handOutPending() {
        StepPlan plan = pendingPlan;
        if (plan == null) {
            return;
        }
        pendingPlan = null;
        OutputProcessor.StepOutcome outcome = outputs.process(plan, pendingSampled);
        pendingSampled = null;
        for (RequestState state : outcome.lagging()) {
            abort(state, "the stream subscriber fell behind: " + state.stream.pending()
                    + " outputs undelivered (stream buffer of " + loaded.options().streamBufferSize() + ")");
        }
        for (RequestState state : outcome.finished()) {
            if (!state.done) {
                end(state, null);
            }
        }
    }

    /** Ends every unfinished completion of a request and completes it, its stream failing with the reason. */
    private void abort(RequestState state, String reason) {
        if (state.done || !inFlight.contains(state)) {
            return;
        }
        outputs.endAll(state, reason);
        end(state, reason);
    }

    /** Ends a request; its stream and result complete at {@link #deliverEnded}, after the metrics show it. */
    private void end(RequestState state, String abortReason) {
        state.done = true;
        inFlight.remove(state);
        requestsFinished++;
        GenerateResult result = state.stream.finish(state.numCachedPromptTokens(), state.timing(System.nanoTime()));
        ended.add(abortReason == null ? () -> state.stream.complete(result) : () -> state.stream.abort(result, abortReason));
    }

    private void deliverEnded() {
        for (Runnable r : ended) {
            r.run();
        }
        ended.clear();
    }

    private void abortAll(String reason) {
        for (RequestState state : new ArrayList<>(inFlight)) {
            abort(state, reason);
        }
    }

    /**
     * A step failed: the requests with a sequence in it fail with the cause, and only those. Every
     * sequence of theirs ends (siblings waiting or parked too), so their blocks go back to the pool
     * and nothing is left that the step half computed (its cache slots, blocks past its computed
     * tokens). Requests outside the step go on, and new ones are taken.
     */
    private void failStep(StepPlan plan, RuntimeException cause) {
        EngineException stepFailure = new EngineException("a model step failed: " + cause, cause);
        Set<RequestState> inStep = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = 0; i < plan.numSeqs(); i++) {
            inStep.add((RequestState) plan.seq(i).owner());
        }
        for (RequestState state : inStep) {
            if (state.done || !inFlight.contains(state)) {
                continue;
            }
            outputs.endAll(state, stepFailure.getMessage());
            state.done = true;
            inFlight.remove(state);
            requestsFinished++;
            ended.add(() -> state.stream.fail(stepFailure));
        }
        publishMetrics();
        deliverEnded();
    }

    /**
     * The loop itself failed (outside a step's model work): every request in flight fails with it,
     * and the engine takes no more. The requests fail first, so that a scheduler left inconsistent
     * by the failure cannot keep their callers waiting.
     */
    private void failAll(Throwable cause) {
        EngineException loopFailure = new EngineException("the engine loop failed: " + cause, cause);
        // Requests still in the inbox fail too (submit takes no more now).
        Command command;
        while ((command = inbox.poll()) != null) {
            if (command instanceof Submit submit) {
                inFlight.add(submit.request());
            }
        }
        for (RequestState state : new ArrayList<>(inFlight)) {
            state.done = true;
            inFlight.remove(state);
            requestsFinished++;
            state.stream.fail(loopFailure);
        }
        scheduler.finishAll(FinishCause.ABORT, loopFailure.getMessage());
    }

    private void publishMetrics() {
        KvCacheManager kv = scheduler.kvCache();
        metrics = new EngineMetrics(scheduler.numRunning(), scheduler.numWaiting(), kv.usage(),
                kv.pool().numUsableBlocks(), kv.blockSize(), kv.prefixCacheQueries(), kv.prefixCacheHits(),
                outputs.promptTokens(), outputs.generationTokens(), prefillTokens, scheduler.numPreemptions(),
                requestsFinished, steps, hostNanos, modelNanos);
    }
}
