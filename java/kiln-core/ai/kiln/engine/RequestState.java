package ai.kiln.engine;

import ai.kiln.api.FinishReason;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestOutput;
import ai.kiln.api.SamplingParams;
import ai.kiln.api.TokenLogprobs;
import ai.kiln.scheduler.Sequence;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The engine's side of one request: its sequences, each completion's text and how much of it has
 * been emitted, its output stream, and timing. Built on the submitting thread, then touched only
 * by the engine loop.
 */
final class RequestState {

    final String requestId;
    final SamplingParams params;
    final int[] promptTokenIds;
    final Sequence[] seqs;                 // [n]
    final Completion[] completions;        // [n]
    RequestStream stream;                  // set once, before the request is queued
    final StopStrings stops;
    final long arrivalNanos;
    long firstScheduledNanos = -1;
    long firstTokenNanos = -1;
    private int numFinished;
    boolean done;

    RequestState(String requestId, SamplingParams params, int[] promptTokenIds, int n, long arrivalNanos) {
        this.requestId = requestId;
        this.params = params;
        this.promptTokenIds = promptTokenIds;
        this.seqs = new Sequence[n];
        this.completions = new Completion[n];
        this.stops = new StopStrings(params.stop());
        this.arrivalNanos = arrivalNanos;
    }

    /** One completion's output so far. */
    final class Completion {
        final int index;
        final TextCodec.Decoder decoder;     // null without a tokenizer
        final StringBuilder text = new StringBuilder();
        final List<TokenLogprobs> logprobs;  // null when not asked for
        int streamedTokens;
        int streamedChars;
        int streamedLogprobs;
        FinishReason finishReason;
        String stopReason;

        Completion(int index, TextCodec.Decoder decoder) {
            this.index = index;
            this.decoder = decoder;
            this.logprobs = params.logprobs() == null ? null : new ArrayList<>();
        }

        boolean finished() {
            return finishReason != null;
        }

        /**
         * Takes the sequence's newest token: detokenizes it (unless it is the end-of-sequence or
         * stop token that ended the sequence) and looks for stop strings. Returns the stop string
         * found, or null.
         */
        String onToken(Sequence seq, TokenLogprobs tokenLogprobs) {
            if (logprobs != null && tokenLogprobs != null) {
                logprobs.add(tokenLogprobs);
            }
            boolean endedByToken = seq.isFinished() && seq.endedByToken();
            String matched = null;
            if (decoder != null && !endedByToken) {
                matched = appendText(decoder.push(seq.lastToken()));
            }
            if (matched == null && seq.isFinished() && decoder != null) {
                matched = appendText(decoder.flush());
            }
            if (matched != null) {
                finishReason = FinishReason.STOP;
                stopReason = matched;
            } else if (seq.isFinished()) {
                finishReason = ApiMapping.finishReason(seq.finishCause());
                stopReason = seq.stopReason();
            }
            return matched;
        }

        private String appendText(String piece) {
            if (piece.isEmpty()) {
                return null;
            }
            int before = text.length();
            text.append(piece);
            StopStrings.Match match = stops.find(text, before);
            if (match == null) {
                return null;
            }
            int end = params.includeStopStrInOutput() ? match.start() + match.stop().length() : match.start();
            text.setLength(end);
            return match.stop();
        }

        /** Ends the completion (an abort), unless it already ended. */
        void abort(String reason) {
            if (finishReason == null) {
                finishReason = FinishReason.ABORT;
                stopReason = reason;
            }
        }

        /** The output since the last one: new tokens, text no stop string can still claim, logprobs. */
        RequestOutput delta(Sequence seq) {
            int numOutput = seq.numOutputTokens();
            int[] all = seq.tokens();
            int[] tokens = new int[numOutput - streamedTokens];
            System.arraycopy(all, seq.numPromptTokens() + streamedTokens, tokens, 0, tokens.length);
            streamedTokens = numOutput;
            int safeEnd = finished() ? text.length() : text.length() - stops.holdBack(text);
            String piece = safeEnd > streamedChars ? text.substring(streamedChars, safeEnd) : "";
            streamedChars = Math.max(streamedChars, safeEnd);
            List<TokenLogprobs> newLogprobs = null;
            if (logprobs != null) {
                newLogprobs = logprobs.subList(streamedLogprobs, logprobs.size());
                streamedLogprobs = logprobs.size();
            }
            return new RequestOutput(requestId, index, tokens, piece, newLogprobs, finishReason, stopReason);
        }
    }

    /** Counts a finished completion; true when it was the last. */
    boolean completionFinished() {
        return ++numFinished == completions.length;
    }

    /** The request's timing, as it ends at {@code finishNanos}. */
    GenerateResult.Timing timing(long finishNanos) {
        Duration queued = firstScheduledNanos < 0 ? Duration.ofNanos(finishNanos - arrivalNanos)
                : Duration.ofNanos(firstScheduledNanos - arrivalNanos);
        Duration ttft = firstTokenNanos < 0 ? null : Duration.ofNanos(firstTokenNanos - arrivalNanos);
        return new GenerateResult.Timing(queued, ttft, Duration.ofNanos(finishNanos - arrivalNanos));
    }

    /** Prompt tokens found in the prefix cache. */
    int numCachedPromptTokens() {
        return Math.max(0, seqs[0].numCachedPromptTokens());
    }
}
