package ai.kiln.bench;

/**
 * One request of a serving benchmark: its prompt, given either as token ids or as text (exactly one
 * is non-null), the prompt's length in tokens and how many tokens to ask for.
 */
public record BenchPrompt(int[] tokenIds, String text, int promptLen, int outputLen) {

    public BenchPrompt {
        if ((tokenIds == null) == (text == null)) {
            throw new IllegalArgumentException("a prompt is either token ids or text");
        }
        if (promptLen < 1 || outputLen < 1) {
            throw new IllegalArgumentException("prompt and output lengths must be >= 1, got " + promptLen + " and " + outputLen);
        }
    }

    public static BenchPrompt ofTokens(int[] tokenIds, int outputLen) {
        return new BenchPrompt(tokenIds, null, tokenIds.length, outputLen);
    }

    public static BenchPrompt ofText(String text, int promptLen, int outputLen) {
        return new BenchPrompt(null, text, promptLen, outputLen);
    }
}
