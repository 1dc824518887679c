package ai.kiln.api;

import java.nio.file.Path;

/** The model directory's tokenizer as a {@link TextCodec}. */
final class TokenizerCodec {

    private TokenizerCodec() {
    }

    /** The tokenizer of the model directory, or null when it has no tokenizer.json. */
    static TextCodec loadIfPresent(Path modelDir) {
        return null;
    }
}
