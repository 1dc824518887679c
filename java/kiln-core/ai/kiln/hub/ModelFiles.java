package ai.kiln.hub;

import java.util.Set;

/**
 * The files of a Hub repository that Kiln loads a model from; the rest (PyTorch .bin weights,
 * GGUF files, ONNX exports, the original checkpoint in a subfolder) are not downloaded.
 */
final class ModelFiles {

    // NOTE: kiln-artifact.json is a compiled artifact's manifest (ai.kiln.model.ModelArtifact).
    private static final Set<String> NAMED = Set.of("config.json", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "chat_template.json",
            "kiln-artifact.json");

    private ModelFiles() {
    }

    /** Whether {@code file} (a path in the repository) is one a model needs. */
    static boolean isNeeded(String file) {
        if (file.contains("/")) {
            return false;
        }
        return NAMED.contains(file) || file.endsWith(".safetensors") || file.endsWith(".safetensors.index.json");
    }
}
