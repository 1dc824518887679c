package ai.kiln.sampling;

import ai.kiln.backend.Backend;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Sampling in Java on host logits, in vLLM's order: penalties (repetition, then frequency and
 * presence), min-tokens suppression, then greedy argmax, or temperature, min-p, top-k, top-p and a
 * draw from the sequence's own random stream. Log-probabilities are of the raw logits.
 *
 * <p>A step whose rows are all plain greedy (no penalties, no logprobs) takes the backend's
 * argmax and copies only the ids; otherwise the logits rows are copied to the host.
 */
public final class HostSampler implements Sampler {

    private final Backend backend;
    private final int vocabSize;
    private final Tensor greedyIds;   // [maxRows] I32 in backend memory; null without a backend
    private int[] hostIds;            // [maxRows]
    private float[] hostLogits = new float[0]; // [rows, V]
    private final double[] work;      // [V] the processed logits, then unnormalised probabilities
    private final long[] order;       // [V] (probability bits << 32 | token id), for top-k and top-p

    /**
     * @param backend   where the logits live (null: only {@link #sampleRow} is usable)
     * @param maxRows   the most rows a step samples
     * @param vocabSize V
     */
    public HostSampler(Backend backend, int maxRows, int vocabSize) {
        this.backend = backend;
        this.vocabSize = vocabSize;
        this.greedyIds = backend == null ? null : backend.allocate(DType.I32, maxRows);
        this.hostIds = new int[maxRows];
        this.work = new double[vocabSize];
        this.order = new long[vocabSize];
    }

    @Override
    public void sample(Tensor logits, SamplingBatch rows, SamplerOutput out) {
        int n = rows.size();
        out.reset(n);
        if (n == 0) {
            return;
        }
        if (logits.size(0) < n || logits.size(1) != vocabSize) {
            throw new IllegalArgumentException("logits " + logits + " do not hold " + n + " rows of " + vocabSize);
        }
        Tensor used = logits.rowSlice(0, n);
        boolean allGreedy = true;
        for (int i = 0; i < n && allGreedy; i++) {
            allGreedy = rows.get(i).isPlainGreedy();
        }
        if (allGreedy) {
            // NOTE: the backend's argmax takes the first maximum, as sampleRow does, so a row's
            // choice does not depend on which path its step took.
            backend.argmax(used, greedyIds.rowSlice(0, n), null);
            if (hostIds.length < n) {
                hostIds = new int[n];
            }
            backend.copyToHost(greedyIds, hostIds, n);
            for (int i = 0; i < n; i++) {
                rows.get(i).accept(hostIds[i]);
                out.set(i, hostIds[i], null);
            }
            return;
        }
        long count = (long) n * vocabSize;
        if (hostLogits.length < count) {
            hostLogits = new float[Math.toIntExact(count)];
        }
        backend.copyToHost(used, hostLogits, (int) count);
        for (int i = 0; i < n; i++) {
            sampleRow(hostLogits, i * vocabSize, rows.get(i), out, i);
        }
    }

    /**
     * Chooses the next token of one sequence from its logits {@code logits[offset, offset + V)},
     * records it in {@code state} and writes it (with log-probabilities if asked) to row
     * {@code row} of {@code out}. Returns the token.
     */
    public int sampleRow(float[] logits, int offset, SequenceSampling state, SamplerOutput out, int row) {
        SamplingParams p = state.params();
        int v = vocabSize;
        double[] w = work;
        for (int i = 0; i < v; i++) {
            w[i] = logits[offset + i];
        }
        applyPenalties(w, state);
        if (state.suppressing()) {
            for (int id : state.suppressed()) {
                if (id >= 0 && id < v) {
                    w[id] = Double.NEGATIVE_INFINITY;
                }
            }
        }
        int token;
        if (p.isGreedy()) {
            token = argmax(w, v);
        } else {
            token = draw(w, v, p, state.nextUniform());
        }
        TokenLogprobs rowLogprobs = p.logprobs() == null ? null : rawLogprobs(logits, offset, token, p.logprobs());
        state.accept(token);
        out.set(row, token, rowLogprobs);
        return token;
    }

    private static void applyPenalties(double[] w, SequenceSampling state) {
        TokenCounts output = state.outputTokens();
        if (output == null) {
            return;
        }
        SamplingParams p = state.params();
        double repetition = p.repetitionPenalty();
        double frequency = p.frequencyPenalty();
        double presence = p.presencePenalty();
        int v = w.length;
        // Tokens of the output, then prompt tokens not in the output: each penalised once.
        output.forEach((token, count) -> {
            if (token < v) {
                w[token] = repetitionPenalised(w[token], repetition) - frequency * count - presence;
            }
        });
        TokenCounts prompt = state.promptTokens();
        if (prompt != null) {
            prompt.forEach((token, count) -> {
                if (token < v && output.get(token) == 0) {
                    w[token] = repetitionPenalised(w[token], repetition);
                }
            });
        }
    }

    private static double repetitionPenalised(double logit, double penalty) {
        return logit > 0 ? logit / penalty : logit * penalty;
    }

    /** The first index of the largest value. */
    static int argmax(double[] w, int v) {
        int best = 0;
        for (int i = 1; i < v; i++) {
            if (w[i] > w[best]) {
                best = i;
            }
        }
        return best;
    }

    /**
     * Temperature, min-p, top-k and top-p over {@code w} (logits in, unnormalised probabilities
     * out, zero for dropped tokens), then the token where the cumulative mass in id order passes
     * {@code u} times the kept mass.
     */
    private int draw(double[] w, int v, SamplingParams p, double u) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            max = Math.max(max, w[i]);
        }
        if (max == Double.NEGATIVE_INFINITY) {
            return 0; // every token suppressed: nothing better to do than token 0
        }
        double invT = 1.0 / p.temperature();
        for (int i = 0; i < v; i++) {
            w[i] = Math.exp((w[i] - max) * invT); // the most likely token gets 1
        }
        if (p.minP() > 0) {
            // Relative to the most likely token, whose unnormalised probability is 1.
            double threshold = p.minP();
            for (int i = 0; i < v; i++) {
                if (w[i] < threshold) {
                    w[i] = 0;
                }
            }
        }
        if (p.hasTopK() || p.topP() < 1.0) {
            truncate(w, v, p);
        }
        double total = 0;
        for (int i = 0; i < v; i++) {
            total += w[i];
        }
        double target = u * total;
        double cumulative = 0;
        int last = 0;
        for (int i = 0; i < v; i++) {
            if (w[i] > 0) {
                cumulative += w[i];
                last = i;
                if (cumulative > target) {
                    return i;
                }
            }
        }
        return last;
    }

    /** Top-k (keeping ties of the k-th value, as vLLM does), then top-p on what is left. */
    private void truncate(double[] w, int v, SamplingParams p) {
        int kept = 0;
        for (int i = 0; i < v; i++) {
            if (w[i] > 0) {
                // Non-negative floats order like their bit patterns.
                order[kept++] = (long) Float.floatToIntBits((float) w[i]) << 32 | i;
            }
        }
        Arrays.sort(order, 0, kept); // ascending: the most likely last
        int start = 0;
        if (p.hasTopK() && p.topK() < kept) {
            int threshold = (int) (order[kept - p.topK()] >>> 32);
            start = kept - p.topK();
            while (start > 0 && (int) (order[start - 1] >>> 32) == threshold) {
                start--;
            }
            for (int j = 0; j < start; j++) {
                w[(int) order[j]] = 0;
            }
        }
        if (p.topP() < 1.0) {
            double total = 0;
            for (int j = start; j < kept; j++) {
                total += w[(int) order[j]];
            }
            // Keep a token while the mass of the tokens more likely than it is below top_p.
            double limit = p.topP() * total;
            double above = 0;
            for (int j = kept - 1; j >= start; j--) {
                int token = (int) order[j];
                if (above >= limit) {
                    w[token] = 0;
                } else {
                    above += w[token];
                }
            }
        }
    }

    private TokenLogprobs rawLogprobs(float[] logits, int offset, int token, int topN) {
        int v = vocabSize;
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        double sum = 0;
        for (int i = 0; i < v; i++) {
            sum += Math.exp(logits[offset + i] - max);
        }
        double logZ = max + Math.log(sum);
        float chosen = logits[offset + token];
        int rank = 1;
        for (int i = 0; i < v; i++) {
            if (logits[offset + i] > chosen) {
                rank++;
            }
        }
        List<TokenLogprobs.Candidate> top = new ArrayList<>(topN);
        if (topN > 0) {
            // Insertion into a short sorted list: topN is at most 20.
            int[] best = new int[Math.min(topN, v)];
            int filled = 0;
            for (int i = 0; i < v; i++) {
                float value = logits[offset + i];
                if (filled == best.length && value <= logits[offset + best[filled - 1]]) {
                    continue;
                }
                int j = filled == best.length ? filled - 1 : filled++;
                while (j > 0 && logits[offset + best[j - 1]] < value) {
                    best[j] = best[j - 1];
                    j--;
                }
                best[j] = i;
            }
            for (int j = 0; j < filled; j++) {
                top.add(new TokenLogprobs.Candidate(best[j], (float) (logits[offset + best[j]] - logZ)));
            }
        }
        return new TokenLogprobs(token, (float) (chosen - logZ), rank, top);
    }

    @Override
    public void close() {
        if (greedyIds != null) {
            backend.free(greedyIds);
        }
    }
}
