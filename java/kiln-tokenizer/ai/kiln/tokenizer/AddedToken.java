package ai.kiln.tokenizer;

/**
 * An entry of tokenizer.json's "added_tokens": text matched in the input before the model runs.
 *
 * @param special    whether decoding with skipSpecialTokens drops it
 * @param singleWord match only when not inside a word (no word character on either side)
 * @param lstrip     the match also swallows whitespace on its left
 * @param rstrip     the match also swallows whitespace on its right
 * @param normalized match against the normalized input (the content normalized the same way)
 *                   rather than the raw input
 */
record AddedToken(int id, String content, boolean special, boolean singleWord, boolean lstrip, boolean rstrip,
                  boolean normalized) {
    AddedToken {
        if (id < 0) {
            throw new IllegalArgumentException("negative added token id " + id);
        }
        if (content == null || content.isEmpty()) {
            throw new IllegalArgumentException("added token " + id + " has empty content");
        }
    }
}
