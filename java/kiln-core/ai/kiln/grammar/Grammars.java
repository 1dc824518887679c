package ai.kiln.grammar;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.util.List;

/** The grammars of structured output: a JSON schema, any JSON object, a regular expression, a choice of texts. */
public final class Grammars {

    private static final ObjectMapper JSON = new ObjectMapper();

    private Grammars() {
    }

    /** The JSON texts a schema (given as JSON text) accepts. */
    public static Grammar jsonSchema(String schemaJson) {
        return JsonSchemaCompiler.compile(parseSchema(schemaJson));
    }

    /**
     * The sequence {@code open}, a JSON text the schema accepts, {@code close}: a tool call in a
     * model's own markers (Hermes' {@code <tool_call>...</tool_call>}).
     */
    public static Grammar delimitedJsonSchema(String open, String schemaJson, String close) {
        return JsonSchemaCompiler.compile(parseSchema(schemaJson), open.getBytes(StandardCharsets.UTF_8),
                close.getBytes(StandardCharsets.UTF_8));
    }

    private static JsonNode parseSchema(String schemaJson) {
        JsonNode schema;
        try {
            schema = JSON.readTree(schemaJson);
        } catch (JsonProcessingException e) {
            throw new GrammarException("the schema is not valid JSON: " + e.getOriginalMessage());
        }
        if (schema == null) {
            throw new GrammarException("the schema is empty");
        }
        return schema;
    }

    /** Any JSON object. */
    public static Grammar jsonObject() {
        return JsonSchemaCompiler.anyObject();
    }

    /** The texts (as UTF-8) a regular expression matches whole; see {@link RegexCompiler} for the syntax. */
    public static Grammar regex(String pattern) {
        GrammarBuilder b = new GrammarBuilder();
        GrammarBuilder.Rule root = b.rule("root");
        root.epsilon(RegexCompiler.emit(pattern, "regex", root, root.start(), false), root.end());
        return b.build(root);
    }

    /** Exactly one of the texts. */
    public static Grammar choice(List<String> choices) {
        if (choices.isEmpty()) {
            throw new GrammarException("the choice list is empty");
        }
        GrammarBuilder b = new GrammarBuilder();
        GrammarBuilder.Rule root = b.rule("root");
        for (String c : choices) {
            root.epsilon(root.literal(root.start(), c.getBytes(StandardCharsets.UTF_8)), root.end());
        }
        return b.build(root);
    }
}
