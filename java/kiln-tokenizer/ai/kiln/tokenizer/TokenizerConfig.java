package ai.kiln.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What Kiln uses from tokenizer_config.json: the special tokens' texts and the chat template.
 *
 * @param chatTemplate        the Jinja template, or null when the model has none
 * @param chatTemplateSource  where the template came from, for error messages
 */
record TokenizerConfig(String bosToken, String eosToken, String unkToken, String padToken, String chatTemplate,
                       String chatTemplateSource) {
    static final TokenizerConfig EMPTY = new TokenizerConfig(null, null, null, null, null, null);

    /**
     * Reads tokenizer_config.json if present, and chat_template.jinja beside it, which takes
     * precedence over the config's template, as in transformers.
     */
    static TokenizerConfig load(Path modelDir) throws IOException {
        Path configFile = modelDir.resolve("tokenizer_config.json");
        TokenizerConfig config = EMPTY;
        if (Files.exists(configFile)) {
            JsonNode root = TokenizerJsonReader.readJson(configFile);
            if (root == null || !root.isObject()) {
                throw new TokenizerLoadException(configFile, "expected a JSON object at the top level");
            }
            JsonFields fields = new JsonFields(configFile);
            config = new TokenizerConfig(tokenText(fields, root, "bos_token"), tokenText(fields, root, "eos_token"),
                    tokenText(fields, root, "unk_token"), tokenText(fields, root, "pad_token"),
                    chatTemplate(fields, root), configFile + " (chat_template)");
        }
        Path templateFile = modelDir.resolve("chat_template.jinja");
        if (Files.exists(templateFile)) {
            config = new TokenizerConfig(config.bosToken, config.eosToken, config.unkToken, config.padToken,
                    Files.readString(templateFile), templateFile.toString());
        }
        return config;
    }

    /** A special token given as a string or as a serialized AddedToken {"content": ...}. */
    private static String tokenText(JsonFields fields, JsonNode root, String field) throws TokenizerLoadException {
        JsonNode node = JsonFields.optional(root, field);
        if (node == null) {
            return null;
        }
        if (node.isTextual()) {
            return node.textValue();
        }
        if (node.isObject()) {
            return fields.requireText(node, "content", field + ".content");
        }
        throw fields.problem(field, "must be a string or an object with \"content\"");
    }

    /** A template string, or a list of named templates of which "default" is the chat template. */
    private static String chatTemplate(JsonFields fields, JsonNode root) throws TokenizerLoadException {
        JsonNode node = JsonFields.optional(root, "chat_template");
        if (node == null) {
            return null;
        }
        if (node.isTextual()) {
            return node.textValue();
        }
        if (!node.isArray()) {
            throw fields.problem("chat_template", "must be a string or a list of {\"name\", \"template\"}");
        }
        for (int i = 0; i < node.size(); i++) {
            JsonNode entry = node.get(i);
            if (!entry.isObject()) {
                throw fields.problem("chat_template[" + i + "]", "must be an object");
            }
            if ("default".equals(fields.requireText(entry, "name", "chat_template[" + i + "].name"))) {
                return fields.requireText(entry, "template", "chat_template[" + i + "].template");
            }
        }
        return null;
    }
}
