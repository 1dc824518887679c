package ai.kiln.tokenizer;

/**
 * Decodes generated token ids one at a time for streaming. {@link #push} returns the text that
 * has become final: never half of a multi-byte character, never a byte-fallback run that could
 * still turn out invalid, never a space that the decoder might still strip. After the last id,
 * {@link #flush} returns whatever was held back. The concatenation of all returned pieces equals
 * {@link Tokenizer#decode} of all the ids. Not thread-safe: use one per sequence.
 */
public final class IncrementalDecoder {
    private final Tokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private final DecoderStage.Collector collector = new DecoderStage.Collector();
    // NOTE: a byte-level decoder alone (GPT-2, Llama 3, Qwen) takes each id's bytes from the
    // tokenizer's table, as the one-shot decode does, rather than mapping its token string back
    // to bytes through the decoder stage: the same text at a fraction of the cost.
    private final Utf8Pieces bytes;  // byte-level decoders; else null
    private DecoderStage stage;      // the other decoders; else null

    IncrementalDecoder(Tokenizer tokenizer, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
        this.bytes = tokenizer.decodesByteLevel() ? new Utf8Pieces() : null;
        this.stage = bytes == null ? tokenizer.decoder().newStage() : null;
    }

    /** Adds the next id; returns the newly final text, or "" if none. Unknown ids are ignored, as in {@link Tokenizer#decode}. */
    public String push(int id) {
        if (bytes != null) {
            byte[] tokenBytes = tokenizer.decodableBytes(id, skipSpecialTokens);
            return tokenBytes == null ? "" : bytes.append(tokenBytes);
        }
        String token = tokenizer.decodableToken(id, skipSpecialTokens);
        if (token == null) {
            return "";
        }
        stage.begin(collector);
        stage.text(token, collector);
        stage.end(collector);
        return collector.take();
    }

    /** Ends the sequence: returns all text still held back and resets the decoder for a new sequence. */
    public String flush() {
        if (bytes != null) {
            return bytes.finish();
        }
        stage.finish(collector);
        stage = tokenizer.decoder().newStage();
        return collector.take();
    }
}
