package ai.kiln.scheduler;

import ai.kiln.kvcache.BlockTable;
import ai.kiln.sampling.SequenceSampling;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One completion being generated: its tokens (prompt, then output), how many of them have K/V in
 * the cache, its blocks and its sampling state. A request with n > 1 completions has n sequences
 * over the same prompt. Changed only by the {@link Scheduler}, on the engine loop thread.
 */
public final class Sequence {

    /** Where the sequence is in its life. */
    public enum Status {
        /** Waiting for admission (new, or preempted and to be recomputed). */
        WAITING,
        /** Parked until the first completion of its request has computed the prompt, to share its blocks. */
        PARKED,
        /** Admitted: holds blocks and is scheduled every step the budget allows. */
        RUNNING,
        FINISHED
    }

    private final long id;
    private final String requestId;
    private final int index;
    private final int numPromptTokens;
    private final int maxTokens;
    private final int[] stopTokenIds;  // stop token ids of the request (not end-of-sequence ids)
    private final SequenceSampling sampling;
    private final BlockTable blocks = new BlockTable();
    private final Object owner;
    private int[] tokens;              // [capacity] prompt then output; [0, numTokens) valid
    private int numTokens;
    private int numComputedTokens;     // tokens whose K/V are in the cache
    private Status status = Status.WAITING;
    private FinishCause finishCause;
    private String stopReason;
    private boolean endedByToken;      // its last token is the end-of-sequence or stop id that ended it
    private int numPreemptions;
    private int numCachedPromptTokens = -1; // prompt tokens found in the prefix cache at first admission
    // n > 1: the first completion of the request, whose prompt blocks the others share.
    private final Sequence forkParent;
    private final List<Sequence> parked = new ArrayList<>(0);

    /**
     * @param id            unique id, also the arrival order
     * @param requestId     the request it belongs to
     * @param index         which of the request's completions (0 for the first)
     * @param prompt        the prompt tokens (copied)
     * @param maxTokens     the most tokens to generate
     * @param stopTokenIds  token ids that end it besides end-of-sequence
     * @param sampling      its sampling state
     * @param forkParent    the request's first completion for index > 0 (shares its prompt blocks), else null
     * @param owner         the engine's state for the request (opaque here)
     */
    public Sequence(long id, String requestId, int index, int[] prompt, int maxTokens, int[] stopTokenIds,
            SequenceSampling sampling, Sequence forkParent, Object owner) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("a sequence needs at least one prompt token");
        }
        if (maxTokens < 1) {
            throw new IllegalArgumentException("maxTokens must be >= 1, got " + maxTokens);
        }
        this.id = id;
        this.requestId = requestId;
        this.index = index;
        this.numPromptTokens = prompt.length;
        this.maxTokens = maxTokens;
        this.stopTokenIds = stopTokenIds.clone();
        this.sampling = sampling;
        this.forkParent = forkParent;
        this.owner = owner;
        this.tokens = Arrays.copyOf(prompt, prompt.length + Math.min(maxTokens, 256));
        this.numTokens = prompt.length;
    }

    public long id() {
        return id;
    }

    public String requestId() {
        return requestId;
    }

    public int index() {
        return index;
    }

    public Object owner() {
        return owner;
    }

    public int numPromptTokens() {
        return numPromptTokens;
    }

    /** Prompt plus generated tokens. */
    public int numTokens() {
        return numTokens;
    }

    public int numOutputTokens() {
        return numTokens - numPromptTokens;
    }

    public int numComputedTokens() {
        return numComputedTokens;
    }

    public int maxTokens() {
        return maxTokens;
    }

    /** The backing token array: [0, numTokens()) valid; read only. */
    public int[] tokens() {
        return tokens;
    }

    public int token(int position) {
        return tokens[position];
    }

    public int lastToken() {
        return tokens[numTokens - 1];
    }

    public int[] promptTokenIds() {
        return Arrays.copyOf(tokens, numPromptTokens);
    }

    public int[] outputTokenIds() {
        return Arrays.copyOfRange(tokens, numPromptTokens, numTokens);
    }

    public BlockTable blocks() {
        return blocks;
    }

    public SequenceSampling sampling() {
        return sampling;
    }

    public Status status() {
        return status;
    }

    public boolean isFinished() {
        return status == Status.FINISHED;
    }

    /** Null until finished. */
    public FinishCause finishCause() {
        return finishCause;
    }

    /** What stopped it: the stop token id or stop string, or the abort reason; null for end-of-sequence and length. */
    public String stopReason() {
        return stopReason;
    }

    /**
     * Whether the last token is the end-of-sequence or stop id that ended the sequence (it has no
     * text); false for a sequence that ended on a token of its output, such as the last of a
     * structured output.
     */
    public boolean endedByToken() {
        return endedByToken;
    }

    public int numPreemptions() {
        return numPreemptions;
    }

    /** Prompt tokens the prefix cache (or the fork) supplied at first admission; -1 before it. */
    public int numCachedPromptTokens() {
        return numCachedPromptTokens;
    }

    Sequence forkParent() {
        return forkParent;
    }

    List<Sequence> parked() {
        return parked;
    }

    int[] stopTokenIds() {
        return stopTokenIds;
    }

    void setStatus(Status status) {
        this.status = status;
    }

    void setNumComputedTokens(int n) {
        numComputedTokens = n;
    }

    void recordCachedPromptTokens(int n) {
        if (numCachedPromptTokens < 0) {
            numCachedPromptTokens = Math.min(n, numPromptTokens);
        }
    }

    void preempted() {
        numComputedTokens = 0;
        numPreemptions++;
        status = Status.WAITING;
    }

    void append(int token) {
        if (numTokens == tokens.length) {
            tokens = Arrays.copyOf(tokens, Math.min(numPromptTokens + maxTokens, tokens.length * 2));
        }
        tokens[numTokens++] = token;
    }

    void markEndedByToken() {
        endedByToken = true;
    }

    void finish(FinishCause reason, String detail) {
        status = Status.FINISHED;
        finishCause = reason;
        stopReason = detail;
    }

    @Override
    public String toString() {
        return "Sequence[" + requestId + (index > 0 ? "#" + index : "") + " " + status + " tokens=" + numTokens
                + " computed=" + numComputedTokens + " blocks=" + blocks + "]";
    }
}
