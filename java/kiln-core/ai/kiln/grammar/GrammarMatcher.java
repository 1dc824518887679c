package ai.kiln.grammar;

import ai.kiln.sampling.TokenConstraint;

/**
 * One sequence's place in a {@link CompiledGrammar}: the parse of the tokens generated so far,
 * the mask of the ids that may come next, and whether the output is complete.
 */
public final class GrammarMatcher implements TokenConstraint {

    private final CompiledGrammar compiled;
    private final boolean allowEnd;
    private ParseState state;
    private boolean ended;  // an end-of-sequence id was accepted where the grammar was complete
    private boolean failed;

    /**
     * @param allowEnd whether end-of-sequence ids are allowed where the output is complete (false
     *                 when they would not end the sequence: the output then ends only where
     *                 nothing may follow)
     */
    GrammarMatcher(CompiledGrammar compiled, boolean allowEnd) {
        this.compiled = compiled;
        this.allowEnd = allowEnd;
        this.state = compiled.grammar().initialState();
    }

    @Override
    public int maskWords() {
        return compiled.vocabulary().maskWords();
    }

    @Override
    public void fillMask(int[] words, int offset) {
        compiled.fillMask(state, words, offset, allowEnd);
    }

    @Override
    public void accept(int token) {
        if (failed || ended) {
            return;
        }
        TokenVocabulary vocab = compiled.vocabulary();
        if (token < 0 || token >= vocab.size()) {
            failed = true;
            return;
        }
        if (state.complete() && allowEnd && vocab.isEnd(token)) {
            ended = true;
            return;
        }
        byte[] bytes = vocab.bytes(token);
        if (bytes.length == 0 || !compiled.accepts(state, bytes)) {
            failed = true;
            return;
        }
        ParseState s = state;
        for (byte b : bytes) {
            s = compiled.grammar().advance(s, b & 0xFF);
        }
        state = s;
    }

    /** Accepts the bytes of a text, as if tokens spelling it were drawn; false (and no change) if the grammar refuses it. */
    public boolean acceptText(byte[] bytes) {
        if (failed || ended || !compiled.accepts(state, bytes)) {
            return false;
        }
        for (byte b : bytes) {
            state = compiled.grammar().advance(state, b & 0xFF);
        }
        return true;
    }

    /** Whether the output so far is a complete sentence of the grammar. */
    public boolean isComplete() {
        return ended || state.complete();
    }

    @Override
    public boolean isTerminated() {
        return ended || state.isTerminated();
    }

    @Override
    public boolean isFailed() {
        return failed;
    }
}
