package ai.kiln.tokenizer;

import java.nio.file.Path;

/**
 * A tokenizer file asks for a component (a normalizer, pre-tokenizer, model, post-processor or
 * decoder type, or an option of one) that Kiln does not implement. Kiln refuses such files rather
 * than tokenizing differently from the reference.
 */
public final class UnsupportedComponentException extends TokenizerLoadException {
    private static final long serialVersionUID = 1L;

    private final String component;

    public UnsupportedComponentException(Path file, String component, String detail) {
        super(file, "unsupported " + component + ": " + detail);
        this.component = component;
    }

    /** Which part of the pipeline is unsupported: "model", "normalizer", "pre-tokenizer", "regex", "post-processor" or "decoder". */
    public String component() {
        return component;
    }
}
