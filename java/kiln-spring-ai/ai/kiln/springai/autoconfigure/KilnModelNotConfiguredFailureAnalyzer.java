package ai.kiln.springai.autoconfigure;

import org.springframework.boot.diagnostics.AbstractFailureAnalyzer;
import org.springframework.boot.diagnostics.FailureAnalysis;

/**
 * Turns a startup that failed for want of {@code spring.ai.kiln.model} into Spring Boot's
 * "APPLICATION FAILED TO START" report with what to set, instead of a nest of bean creation
 * exceptions. Registered in {@code META-INF/spring.factories}.
 */
public class KilnModelNotConfiguredFailureAnalyzer extends AbstractFailureAnalyzer<KilnModelNotConfiguredException> {

    @Override
    protected FailureAnalysis analyze(Throwable rootFailure, KilnModelNotConfiguredException cause) {
        return new FailureAnalysis(
                "The Kiln chat model is auto-configured, but " + KilnEngineProperties.PREFIX
                        + ".model does not name the model directory to load.",
                "Set " + KilnEngineProperties.PREFIX + ".model to a Hugging Face model directory (config.json,"
                        + " *.safetensors, tokenizer.json with a chat template), or define an ai.kiln.api.Engine"
                        + " bean. To leave Kiln off, set spring.ai.model.chat to another provider, or to none.",
                cause);
    }
}
