package ai.kiln.backend;

/**
 * The word layouts of {@link Backend#sample}'s parameter rows, penalty table and log-probability
 * rows: the same numbers as native/include/kiln_sampling.h, where the contract they carry is
 * written (docs/sampling.md says it in words).
 */
public final class SampleWords {

    /** Int32 words of one row's parameters. */
    public static final int ROW_WORDS = 12;
    /** float bits; 0: greedy. */
    public static final int TEMPERATURE = 0;
    /** int; 0 or less: off. */
    public static final int TOP_K = 1;
    /** uint32 fraction of 2^32; 0: off. */
    public static final int TOP_P = 2;
    /** float bits; 0: off. */
    public static final int MIN_P = 3;
    public static final int REPETITION = 4;
    public static final int PRESENCE = 5;
    public static final int FREQUENCY = 6;
    /** Row of the penalty table, or -1. */
    public static final int PENALTY_ROW = 7;
    /** {@link #PENALIZE} | {@link #SUPPRESS}. */
    public static final int FLAGS = 8;
    /** -1: none; else how many alternatives. */
    public static final int LOGPROBS = 9;
    /** The draw's 53 random bits: low 32. */
    public static final int RANDOM_LO = 10;
    /** The draw's 53 random bits: high 21. */
    public static final int RANDOM_HI = 11;

    /** Apply the repetition, presence and frequency penalties. */
    public static final int PENALIZE = 1;
    /** Mask the penalty row's suppressed ids (min_tokens not reached). */
    public static final int SUPPRESS = 2;

    /** The most alternatives a log-probability row holds. */
    public static final int MAX_LOGPROBS = 20;
    /** Int32 words of one log-probability row: the chosen token's log-probability and rank, then (id, log-probability) pairs. */
    public static final int LOGPROB_WORDS = 2 + 2 * MAX_LOGPROBS;

    private SampleWords() {
    }
}
