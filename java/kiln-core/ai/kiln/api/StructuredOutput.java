package ai.kiln.api;

import java.util.List;
import java.util.Objects;

/**
 * A constraint on a request's output: every token is drawn from those that keep the text a
 * prefix of what the constraint accepts, and the output ends (finish reason "stop") once it is
 * complete. Build one with {@link #jsonObject()}, {@link #jsonSchema}, {@link #regex} or {@link
 * #choice}; the engine compiles it when the request is submitted (an invalid schema or pattern is
 * an IllegalArgumentException naming the problem), once per distinct value.
 *
 * @param kind    what {@code text} or {@code choices} is
 * @param text    the JSON schema (as JSON text) or the regular expression; null for the other kinds
 * @param choices the texts of {@link Kind#CHOICE}, or the opening and closing texts of {@link
 *                Kind#DELIMITED_JSON_SCHEMA}; empty for the other kinds
 */
public record StructuredOutput(Kind kind, String text, List<String> choices) {

    /** The kinds of constraint. */
    public enum Kind {
        /** Any JSON object (OpenAI's {@code response_format: {"type": "json_object"}}). */
        JSON_OBJECT,
        /** JSON that a JSON schema accepts. */
        JSON_SCHEMA,
        /**
         * JSON that a JSON schema accepts between a fixed opening and closing text (a model's
         * tool-call markers, such as {@code <tool_call>} and {@code </tool_call>}).
         */
        DELIMITED_JSON_SCHEMA,
        /** Text that a regular expression matches whole. */
        REGEX,
        /** Exactly one of a list of texts. */
        CHOICE
    }

    public StructuredOutput {
        Objects.requireNonNull(kind, "kind");
        choices = List.copyOf(choices == null ? List.of() : choices);
        switch (kind) {
            case JSON_OBJECT -> {
                if (text != null || !choices.isEmpty()) {
                    throw new IllegalArgumentException("a json_object constraint takes no schema, pattern or choices");
                }
            }
            case JSON_SCHEMA, REGEX -> {
                if (text == null || text.isEmpty()) {
                    throw new IllegalArgumentException((kind == Kind.REGEX ? "the regular expression" : "the schema")
                            + " must not be empty");
                }
                if (!choices.isEmpty()) {
                    throw new IllegalArgumentException("only a choice constraint takes choices");
                }
            }
            case DELIMITED_JSON_SCHEMA -> {
                if (text == null || text.isEmpty()) {
                    throw new IllegalArgumentException("the schema must not be empty");
                }
                if (choices.size() != 2) {
                    throw new IllegalArgumentException("a delimited schema takes an opening and a closing text, got "
                            + choices.size() + " texts");
                }
            }
            case CHOICE -> {
                if (choices.isEmpty()) {
                    throw new IllegalArgumentException("the choice list must not be empty");
                }
                if (text != null) {
                    throw new IllegalArgumentException("a choice constraint takes no schema or pattern");
                }
            }
        }
    }

    public static StructuredOutput jsonObject() {
        return new StructuredOutput(Kind.JSON_OBJECT, null, List.of());
    }

    /** @param schemaJson the schema as JSON text */
    public static StructuredOutput jsonSchema(String schemaJson) {
        return new StructuredOutput(Kind.JSON_SCHEMA, schemaJson, List.of());
    }

    /**
     * JSON that {@code schemaJson} accepts, written between {@code open} and {@code close} (either
     * may be empty).
     */
    public static StructuredOutput delimitedJsonSchema(String open, String schemaJson, String close) {
        return new StructuredOutput(Kind.DELIMITED_JSON_SCHEMA, schemaJson, List.of(open, close));
    }

    public static StructuredOutput regex(String pattern) {
        return new StructuredOutput(Kind.REGEX, pattern, List.of());
    }

    public static StructuredOutput choice(List<String> choices) {
        return new StructuredOutput(Kind.CHOICE, null, choices);
    }
}
