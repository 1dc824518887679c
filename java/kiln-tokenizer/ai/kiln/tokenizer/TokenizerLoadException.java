package ai.kiln.tokenizer;

import java.io.IOException;
import java.nio.file.Path;

/** A tokenizer file could not be used: malformed JSON, a missing or ill-typed field, bad data. */
public class TokenizerLoadException extends IOException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;

    public TokenizerLoadException(Path file, String problem) {
        super(file + ": " + problem);
        this.file = file;
    }

    public TokenizerLoadException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
        this.file = file;
    }

    /** The file at fault. */
    public Path file() {
        return file;
    }
}
