package ai.kiln.engine;

import ai.kiln.sampling.SamplerOutput;
import ai.kiln.scheduler.FinishCause;
import ai.kiln.scheduler.Scheduler;
import ai.kiln.scheduler.Sequence;
import ai.kiln.scheduler.StepPlan;
import java.util.ArrayList;
import java.util.List;

/**
 * After a step: turns each sampled token into its request's output. It detokenizes, looks for
 * stop strings (ending the sequence on a match), emits the completion's new tokens and text to
 * the request's stream, and says which requests ended and which streams fell behind.
 */
final class OutputProcessor {

    /** What a step's outputs did to their requests. */
    record StepOutcome(List<RequestState> finished, List<RequestState> lagging) {
    }

    private final Scheduler scheduler;
    private final DeliveryBatch deliveries = new DeliveryBatch();
    private long promptTokens;
    private long generationTokens;

    OutputProcessor(Scheduler scheduler) {
        this.scheduler = scheduler;
    }

    /** Hands out a step's tokens; the streams' deliveries leave for the stream executor together, at the end. */
    StepOutcome process(StepPlan plan, SamplerOutput sampled) {
        try {
            return handOut(plan, sampled);
        } finally {
            deliveries.dispatch(); // even after a failure: a channel with a delivery gathered delivers nothing until then
        }
    }

    private StepOutcome handOut(StepPlan plan, SamplerOutput sampled) {
        long now = System.nanoTime();
        List<RequestState> finished = new ArrayList<>();
        List<RequestState> lagging = new ArrayList<>();
        for (int r = 0; r < plan.numSampling(); r++) {
            Sequence seq = plan.samplingSeq(r);
            RequestState state = (RequestState) seq.owner();
            if (state.done || lagging.contains(state)) {
                continue;
            }
            RequestState.Completion completion = state.completions[seq.index()];
            if (completion.finished()) {
                continue; // ended by a stop string while this step ran: its token is dropped
            }
            if (state.firstTokenNanos < 0) {
                state.firstTokenNanos = now;
                promptTokens += state.promptTokenIds.length;
            }
            generationTokens++;
            String stop = completion.onToken(seq, ApiMapping.tokenLogprobs(sampled.logprobs(r)));
            if (stop != null && !seq.isFinished()) {
                scheduler.finish(seq, FinishCause.STOP, stop);
            }
            if (!state.stream.emit(completion.delta(seq), deliveries)) {
                lagging.add(state);
                continue;
            }
            if (completion.finished() && state.completionFinished()) {
                finished.add(state);
            }
        }
        return new StepOutcome(finished, lagging);
    }

    /**
     * Ends every unfinished completion of a request (an abort or a failure): its sequences give
     * their blocks back, and what each generated is folded into the request's result.
     */
    void endAll(RequestState state, String reason) {
        for (int i = 0; i < state.seqs.length; i++) {
            scheduler.finish(state.seqs[i], FinishCause.ABORT, reason);
            RequestState.Completion completion = state.completions[i];
            if (!completion.finished()) {
                completion.abort(reason);
                state.stream.foldOnly(completion.delta(state.seqs[i]));
            }
        }
    }

    /** Prompt tokens of requests that started generating. */
    long promptTokens() {
        return promptTokens;
    }

    /** Tokens generated. */
    long generationTokens() {
        return generationTokens;
    }
}
