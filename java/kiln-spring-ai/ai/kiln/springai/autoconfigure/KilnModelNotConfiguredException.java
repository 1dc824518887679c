package ai.kiln.springai.autoconfigure;

/**
 * The Kiln auto-configuration is on but {@code spring.ai.kiln.model} names no model directory,
 * so there is no engine to create. Thrown at startup, and explained by
 * {@link KilnModelNotConfiguredFailureAnalyzer}.
 */
public class KilnModelNotConfiguredException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    public KilnModelNotConfiguredException() {
        super(KilnEngineProperties.PREFIX + ".model is not set: the Kiln chat model needs a Hugging Face model"
                + " directory (config.json, safetensors weights, tokenizer.json) to load, or an Engine bean of the"
                + " application's own; set spring.ai.model.chat to another provider (or none) to leave Kiln off");
    }
}
