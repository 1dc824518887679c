package ai.kiln.sampling;

import ai.kiln.backend.Backend;
import ai.kiln.backend.SampleWords;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Sampling where the logits are, by the backend's {@link Backend#sample} op (the contract of
 * docs/sampling.md, the same on every backend). Each step uploads the rows' parameters and their
 * random bits, and reads back only the chosen ids and the log-probabilities asked for.
 *
 * <p>Penalties and the min-tokens mask read a table of token statistics in backend memory, one
 * row per sequence that needs one. The op counts each chosen token there as it draws, so a row is
 * written whole only when a sequence first needs one, or after its row went to another sequence
 * (a cache of at most {@code maxRows} rows, the least recently used given up first: every step's
 * rows fit, since a step samples at most {@code maxRows} sequences). Sequences in min_tokens
 * hold a row only while their end ids are masked.
 *
 * <p>A step whose rows are all plain greedy takes the backend's argmax instead, which spreads one
 * row over many blocks and chooses the same ids.
 *
 * <p>Rows with a {@link TokenConstraint} (structured output) have their mask of allowed ids
 * computed here at launch, on the host, while the device still runs the step's forward pass
 * (launched just before), then uploaded and applied to their logits ({@link Backend#maskLogits})
 * ahead of the argmax or the draw. Logit biases are added before the masks.
 */
public final class BackendSampler implements Sampler {

    private final Backend backend;
    private final int vocabSize;
    private final int maxRows;
    private final Tensor rowWords;    // [maxRows, ROW_WORDS] I32
    private final Tensor ids;         // [maxRows] I32
    private final Tensor logprobs;    // [maxRows, LOGPROB_WORDS] I32
    private final Tensor penalties;   // [maxRows, V] I32: token statistics, one row per sequence that needs them
    private final int maskWords;      // ceil(V / 32)
    private final Tensor masks;       // [maxRows, maskWords] I32: the constrained rows' allowed ids, one bit each
    private final Tensor maskRows;    // [maxRows] I32: the logits row of each mask
    private final int[] hostMasks;    // [maxRows * maskWords]
    private final int[] hostMaskRows; // [maxRows]
    private Tensor biasEntries;       // [capacity, 3] I32: row, id, bias bits of the step's logit biases
    private int[] hostBiasEntries = new int[0]; // [capacity * 3]
    private Tensor resetIds;          // [capacity] I32: a penalty row's ids on their way to resetPenaltyRow
    private final int[] hostWords;    // [maxRows * ROW_WORDS]
    private final int[] hostIds;      // [maxRows]
    private final int[] hostLogprobs; // [maxRows * LOGPROB_WORDS]
    private int[] hostResetIds = new int[0];

    // The penalty-row cache.
    private final Map<SequenceSampling, Integer> penaltyRowOf = new IdentityHashMap<>();
    private final SequenceSampling[] penaltyRowOwner; // [maxRows]
    private final int[] penaltyRowTokens;             // [maxRows] tokens the row accounts for
    private final long[] penaltyRowLastStep;          // [maxRows]
    private long step;

    // The launched step, until it is collected.
    private SamplingBatch launchedRows; // null when none is in flight
    private int launchedCount;
    private boolean launchedGreedy;
    private boolean launchedLogprobs;

    /**
     * @param backend   where the logits live and the op runs
     * @param maxRows   the most rows a step samples
     * @param vocabSize V
     */
    public BackendSampler(Backend backend, int maxRows, int vocabSize) {
        this.backend = backend;
        this.vocabSize = vocabSize;
        this.maxRows = maxRows;
        this.maskWords = (vocabSize + 31) >>> 5;
        List<Tensor> allocated = new ArrayList<>();
        try {
            rowWords = allocate(allocated, DType.I32, maxRows, SampleWords.ROW_WORDS);
            ids = allocate(allocated, DType.I32, maxRows);
            logprobs = allocate(allocated, DType.I32, maxRows, SampleWords.LOGPROB_WORDS);
            penalties = allocate(allocated, DType.I32, maxRows, vocabSize);
            masks = allocate(allocated, DType.I32, maxRows, maskWords);
            maskRows = allocate(allocated, DType.I32, maxRows);
            biasEntries = allocate(allocated, DType.I32, 256, 3);
            resetIds = allocate(allocated, DType.I32, 4096);
        } catch (RuntimeException e) {
            allocated.forEach(backend::free);
            throw e;
        }
        hostWords = new int[maxRows * SampleWords.ROW_WORDS];
        hostIds = new int[maxRows];
        hostLogprobs = new int[maxRows * SampleWords.LOGPROB_WORDS];
        hostMasks = new int[maxRows * maskWords];
        hostMaskRows = new int[maxRows];
        penaltyRowOwner = new SequenceSampling[maxRows];
        penaltyRowTokens = new int[maxRows];
        penaltyRowLastStep = new long[maxRows];
        Arrays.fill(penaltyRowLastStep, -1);
    }

    private Tensor allocate(List<Tensor> allocated, DType dtype, long... shape) {
        Tensor t = backend.allocate(dtype, shape);
        allocated.add(t);
        return t;
    }

    @Override
    public void launch(Tensor logits, SamplingBatch rows) {
        if (launchedRows != null) {
            throw new IllegalStateException("the step launched before was not collected");
        }
        int n = rows.size();
        if (n > maxRows || (n > 0 && (logits.size(0) < n || logits.size(1) != vocabSize))) {
            throw new IllegalArgumentException("logits " + logits + " do not hold " + n + " rows of " + vocabSize
                    + " (at most " + maxRows + ")");
        }
        launchedRows = rows;
        launchedCount = n;
        try {
            issue(logits, rows, n);
        } catch (RuntimeException e) {
            launchedRows = null; // nothing in flight to collect: the step failed
            throw e;
        }
    }

    private void issue(Tensor logits, SamplingBatch rows, int n) {
        if (n == 0) {
            return;
        }
        Tensor used = logits.rowSlice(0, n);
        applyLogitBias(used, rows, n);
        applyConstraints(used, rows, n);
        boolean allGreedy = true;
        for (int i = 0; i < n && allGreedy; i++) {
            allGreedy = rows.get(i).isPlainGreedy();
        }
        launchedGreedy = allGreedy;
        launchedLogprobs = false;
        if (allGreedy) {
            backend.argmax(used, ids, null);
            return;
        }
        step++;
        // The rows this step's sequences hold are theirs for the step, before any is given away.
        for (int i = 0; i < n; i++) {
            Integer held = rows.get(i).needsPenaltyRow() ? penaltyRowOf.get(rows.get(i)) : null;
            if (held != null) {
                penaltyRowLastStep[held] = step;
            }
        }
        boolean anyPenaltyRow = false;
        boolean anyLogprobs = false;
        for (int i = 0; i < n; i++) {
            SequenceSampling state = rows.get(i);
            int penaltyRow = state.needsPenaltyRow() ? penaltyRow(rows, i) : -1;
            anyPenaltyRow |= penaltyRow >= 0;
            anyLogprobs |= state.settings().wantsLogprobs();
            writeRow(hostWords, i * SampleWords.ROW_WORDS, state, penaltyRow);
        }
        launchedLogprobs = anyLogprobs;
        backend.copyFromHost(rowWords, hostWords, n * SampleWords.ROW_WORDS);
        backend.sample(used, rowWords, anyPenaltyRow ? penalties : null, ids, anyLogprobs ? logprobs : null);
    }

    /** Adds the rows' logit biases to their logits. */
    private void applyLogitBias(Tensor logits, SamplingBatch rows, int n) {
        int count = 0;
        for (int i = 0; i < n; i++) {
            count += rows.get(i).logitBias().size();
        }
        if (count == 0) {
            return;
        }
        if (hostBiasEntries.length < 3 * count) {
            hostBiasEntries = new int[3 * Math.max(count, 2 * hostBiasEntries.length / 3)];
        }
        int at = 0;
        for (int i = 0; i < n; i++) {
            LogitBias bias = rows.get(i).logitBias();
            for (int k = 0; k < bias.size(); k++) {
                if (bias.ids()[k] >= vocabSize) {
                    throw new IllegalArgumentException("logit_bias token id " + bias.ids()[k]
                            + " is outside the vocabulary [0, " + vocabSize + ")");
                }
                hostBiasEntries[at++] = i;
                hostBiasEntries[at++] = bias.ids()[k];
                hostBiasEntries[at++] = Float.floatToRawIntBits(bias.biases()[k]);
            }
        }
        if (biasEntries.size(0) < count) {
            Tensor larger = backend.allocate(DType.I32, Math.max(count, 2 * biasEntries.size(0)), 3);
            backend.free(biasEntries);
            biasEntries = larger;
        }
        backend.copyFromHost(biasEntries, hostBiasEntries, 3 * count);
        backend.addLogitBias(logits, biasEntries, count);
    }

    /** Masks the logits of the rows whose sequences have a constraint: their forbidden ids become -inf. */
    private void applyConstraints(Tensor logits, SamplingBatch rows, int n) {
        int numMasked = 0;
        for (int i = 0; i < n; i++) {
            TokenConstraint constraint = rows.get(i).constraint();
            if (constraint == null) {
                continue;
            }
            if (constraint.maskWords() != maskWords) {
                throw new IllegalArgumentException("a constraint's mask of " + constraint.maskWords()
                        + " words does not cover the vocabulary of " + vocabSize + " ids");
            }
            constraint.fillMask(hostMasks, numMasked * maskWords);
            hostMaskRows[numMasked++] = i;
        }
        if (numMasked == 0) {
            return;
        }
        backend.copyFromHost(masks, hostMasks, numMasked * maskWords);
        backend.copyFromHost(maskRows, hostMaskRows, numMasked);
        backend.maskLogits(logits, masks, maskRows, numMasked);
    }

    @Override
    public void collect(SamplerOutput out) {
        SamplingBatch rows = launchedRows;
        if (rows == null) {
            throw new IllegalStateException("no step was launched");
        }
        launchedRows = null;
        int n = launchedCount;
        out.reset(n);
        if (n == 0) {
            return;
        }
        backend.copyToHost(ids, hostIds, n); // waits for the step's ops
        if (launchedGreedy) {
            for (int i = 0; i < n; i++) {
                rows.get(i).accept(hostIds[i]);
                out.set(i, hostIds[i], null);
            }
            return;
        }
        if (launchedLogprobs) {
            backend.copyToHost(logprobs, hostLogprobs, n * SampleWords.LOGPROB_WORDS);
        }
        for (int i = 0; i < n; i++) {
            SequenceSampling state = rows.get(i);
            int token = hostIds[i];
            int penaltyRow = hostWords[i * SampleWords.ROW_WORDS + SampleWords.PENALTY_ROW];
            if (penaltyRow >= 0) {
                penaltyRowTokens[penaltyRow]++; // the op counted the token
            }
            int topN = state.settings().logprobs();
            out.set(i, token, topN < 0 ? null : logprobsOf(i, token, topN));
            state.accept(token);
        }
    }

    /** The parameter words of one row (the layout of {@link SampleWords}). */
    static void writeRow(int[] words, int at, SequenceSampling state, int penaltyRow) {
        SamplerSettings p = state.settings();
        long random = state.nextRandomBits();
        // NOTE: a temperature past the float range samples as an infinite one would: uniformly.
        float temperature = p.isGreedy() ? 0f : (float) Math.min(p.temperature(), Float.MAX_VALUE);
        words[at + SampleWords.TEMPERATURE] = Float.floatToRawIntBits(temperature);
        words[at + SampleWords.TOP_K] = p.hasTopK() ? p.topK() : 0;
        words[at + SampleWords.TOP_P] = p.topP() < 1.0 ? (int) Math.max(1L, (long) Math.floor(p.topP() * 0x1.0p32)) : 0;
        words[at + SampleWords.MIN_P] = Float.floatToRawIntBits((float) p.minP());
        words[at + SampleWords.REPETITION] = Float.floatToRawIntBits((float) p.repetitionPenalty());
        words[at + SampleWords.PRESENCE] = Float.floatToRawIntBits((float) p.presencePenalty());
        words[at + SampleWords.FREQUENCY] = Float.floatToRawIntBits((float) p.frequencyPenalty());
        words[at + SampleWords.PENALTY_ROW] = penaltyRow;
        int flags = 0;
        if (penaltyRow >= 0) {
            flags |= p.hasPenalties() ? SampleWords.PENALIZE : 0;
            flags |= state.suppressing() ? SampleWords.SUPPRESS : 0;
        }
        words[at + SampleWords.FLAGS] = flags;
        words[at + SampleWords.LOGPROBS] = p.logprobs();
        words[at + SampleWords.RANDOM_LO] = (int) random;
        words[at + SampleWords.RANDOM_HI] = (int) (random >>> 32);
    }

    /**
     * The penalty row of batch row {@code i}'s sequence, written whole when the sequence has none
     * or its row does not account for exactly its tokens so far.
     */
    private int penaltyRow(SamplingBatch rows, int i) {
        SequenceSampling state = rows.get(i);
        int numTokens = rows.numTokens(i);
        Integer held = penaltyRowOf.get(state);
        if (held != null && penaltyRowTokens[held] == numTokens) {
            penaltyRowLastStep[held] = step;
            return held;
        }
        int row = held != null ? held : takePenaltyRow(state);
        int numPrompt = rows.numPromptTokens(i);
        int[] suppressed = state.suppressed();
        int count = numTokens + suppressed.length;
        if (hostResetIds.length < count) {
            hostResetIds = new int[Math.max(count, 2 * hostResetIds.length)];
        }
        System.arraycopy(rows.tokens(i), 0, hostResetIds, 0, numTokens);
        int numSuppressed = 0;
        for (int id : suppressed) {
            if (id >= 0 && id < vocabSize) { // stop ids outside the vocabulary can never be drawn
                hostResetIds[numTokens + numSuppressed++] = id;
            }
        }
        if (resetIds.numel() < count) {
            Tensor larger = backend.allocate(DType.I32, Math.max(count, 2 * hostResetIds.length));
            backend.free(resetIds);
            resetIds = larger;
        }
        backend.copyFromHost(resetIds, hostResetIds, numTokens + numSuppressed);
        backend.resetPenaltyRow(penalties, row, resetIds, numPrompt, numTokens - numPrompt, numSuppressed);
        penaltyRowTokens[row] = numTokens;
        penaltyRowLastStep[row] = step;
        return row;
    }

    /** A free row, or the least recently used one that this step has not taken. */
    private int takePenaltyRow(SequenceSampling state) {
        int chosen = -1;
        for (int r = 0; r < maxRows; r++) {
            if (penaltyRowOwner[r] == null) {
                chosen = r;
                break;
            }
            if (penaltyRowLastStep[r] < step && (chosen < 0 || penaltyRowLastStep[r] < penaltyRowLastStep[chosen])) {
                chosen = r;
            }
        }
        if (chosen < 0) {
            throw new IllegalStateException("every penalty row is taken by this step's " + maxRows + " rows");
        }
        if (penaltyRowOwner[chosen] != null) {
            penaltyRowOf.remove(penaltyRowOwner[chosen]);
        }
        penaltyRowOwner[chosen] = state;
        penaltyRowOf.put(state, chosen);
        penaltyRowTokens[chosen] = -1; // accounts for nothing until it is written
        return chosen;
    }

    private SampledLogprobs logprobsOf(int row, int token, int topN) {
        int at = row * SampleWords.LOGPROB_WORDS;
        float chosen = Float.intBitsToFloat(hostLogprobs[at]);
        int rank = hostLogprobs[at + 1];
        int count = Math.min(topN, vocabSize);
        int[] topIds = new int[count];            // [count]
        float[] topLogprobs = new float[count];   // [count]
        for (int j = 0; j < count; j++) {
            topIds[j] = hostLogprobs[at + 2 + 2 * j];
            topLogprobs[j] = Float.intBitsToFloat(hostLogprobs[at + 3 + 2 * j]);
        }
        return new SampledLogprobs(token, chosen, rank, topIds, topLogprobs);
    }

    @Override
    public void close() {
        for (Tensor t : new Tensor[] {rowWords, ids, logprobs, penalties, masks, maskRows, biasEntries, resetIds}) {
            if (t != null) {
                backend.free(t);
            }
        }
    }
}
