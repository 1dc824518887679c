package ai.kiln.sampling;

/**
 * What a sequence's next token must satisfy beyond its sampling parameters (a grammar of
 * structured output): the sampler asks it for the mask of allowed ids before each draw and tells
 * it the id drawn. Used by the engine loop alone.
 */
public interface TokenConstraint {

    /** Words of a mask: one bit per id of the vocabulary, id i at bit i % 32 of word i / 32. */
    int maskWords();

    /** Writes the mask of the ids allowed next into words [offset, offset + {@link #maskWords}). */
    void fillMask(int[] words, int offset);

    /** Records the drawn id. */
    void accept(int token);

    /** Whether the output is complete and nothing may follow: the sequence ends. */
    boolean isTerminated();

    /** Whether an accepted id was outside the constraint (no allowed id existed): the sequence cannot go on. */
    boolean isFailed();
}
