package ai.kiln.scheduler;

import ai.kiln.model.ForwardBatch;
import ai.kiln.sampling.SamplerOutput;
import java.util.Arrays;

/**
 * A stand-in for the model that checks the scheduler's plans against a simulated KV cache: each
 * step writes (token, position) into the slots of its tokens, then every sequence "attends" to
 * all its positions through its block-table row and must find its own tokens there. The next
 * token is a hash of the whole sequence, so a sequence's output depends only on its content, as
 * greedy decoding of a real model does.
 */
final class FakeModel {

    static final int VOCAB = 50;

    private final int blockSize;
    private final int[] slotToken; // [numBlocks * blockSize]
    private final int[] slotPos;   // [numBlocks * blockSize]
    private final SamplerOutput out;
    long tokensComputed;

    FakeModel(int numBlocks, int blockSize, int maxSeqs) {
        this.blockSize = blockSize;
        slotToken = new int[numBlocks * blockSize];
        slotPos = new int[numBlocks * blockSize];
        Arrays.fill(slotToken, -1);
        Arrays.fill(slotPos, -1);
        out = new SamplerOutput(maxSeqs);
    }

    /** The token a sequence with these tokens produces next (never 0, 1 or 2). */
    static int next(int[] tokens, int count) {
        long h = 17;
        for (int i = 0; i < count; i++) {
            h = h * 1_000_003 + tokens[i];
        }
        return 3 + (int) Math.floorMod(h ^ (h >>> 29), (long) VOCAB - 3);
    }

    /** Runs a step; throws AssertionError when a sequence would read wrong K/V. */
    SamplerOutput run(StepPlan plan) {
        ForwardBatch b = plan.batch();
        int m = b.maxBlocksPerSeq();
        for (int t = 0; t < b.numTokens(); t++) {
            int slot = b.slotMapping()[t];
            int block = slot / blockSize;
            if (block == 0) {
                throw new AssertionError("token " + t + " is written to the null block");
            }
            slotToken[slot] = b.tokenIds()[t];
            slotPos[slot] = b.positions()[t];
        }
        tokensComputed += b.numTokens();
        for (int s = 0; s < b.numSeqs(); s++) {
            Sequence seq = plan.seq(s);
            int queryLen = b.queryStart()[s + 1] - b.queryStart()[s];
            if (queryLen != plan.numScheduled(s)) {
                throw new AssertionError(seq + ": query length " + queryLen + " but " + plan.numScheduled(s) + " scheduled");
            }
            int len = b.seqLens()[s];
            for (int p = 0; p < len; p++) {
                int block = b.blockTables()[s * m + p / blockSize];
                int slot = block * blockSize + p % blockSize;
                if (slotToken[slot] != seq.token(p) || slotPos[slot] != p) {
                    throw new AssertionError(seq + " reads K/V of token " + slotToken[slot] + " at position "
                            + slotPos[slot] + " from block " + block + " where it expects token " + seq.token(p)
                            + " at position " + p);
                }
            }
        }
        out.reset(plan.numSampling());
        for (int r = 0; r < plan.numSampling(); r++) {
            Sequence seq = plan.samplingSeq(r);
            if (b.logitsRows()[r] != b.queryStart()[indexOf(plan, seq) + 1] - 1) {
                throw new AssertionError(seq + ": logits row " + b.logitsRows()[r] + " is not its last token");
            }
            int token = next(seq.tokens(), seq.numTokens());
            seq.sampling().accept(token);
            out.set(r, token, null);
        }
        return out;
    }

    private static int indexOf(StepPlan plan, Sequence seq) {
        for (int i = 0; i < plan.numSeqs(); i++) {
            if (plan.seq(i) == seq) {
                return i;
            }
        }
        throw new AssertionError(seq + " samples but is not in the step");
    }

    /** What a sequence alone generates: {@code maxTokens} tokens of {@link #next}. */
    static int[] alone(int[] prompt, int maxTokens) {
        int[] tokens = Arrays.copyOf(prompt, prompt.length + maxTokens);
        for (int i = prompt.length; i < tokens.length; i++) {
            tokens[i] = next(tokens, i);
        }
        return Arrays.copyOfRange(tokens, prompt.length, tokens.length);
    }
}
