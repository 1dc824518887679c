package ai.kiln.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Locale;

/**
 * The OpenAI route {@code kiln bench serve} drives, as vLLM's benchmark's {@code --endpoint}: how
 * a prompt goes into the request body and which streamed chunks carry generated tokens (the ones
 * timed for TTFT and ITL).
 */
public enum ServingEndpoint {

    /** {@code /v1/completions}: the prompt as token ids or text, each chunk's {@code choices[].text}. */
    COMPLETIONS("/v1/completions") {
        @Override
        void putPrompt(ObjectNode body, BenchPrompt prompt) {
            if (prompt.tokenIds() != null) {
                ArrayNode ids = body.putArray("prompt");
                for (int id : prompt.tokenIds()) {
                    ids.add(id);
                }
            } else {
                body.put("prompt", prompt.text());
            }
            body.put("max_tokens", prompt.outputLen());
        }

        @Override
        boolean carriesTokens(JsonNode choices) {
            return !choices.isEmpty();
        }
    },

    /**
     * {@code /v1/chat/completions}: the prompt text as one user message, each chunk's
     * {@code choices[].delta.content}.
     */
    CHAT_COMPLETIONS("/v1/chat/completions") {
        @Override
        void putPrompt(ObjectNode body, BenchPrompt prompt) {
            if (prompt.text() == null) {
                throw new IllegalArgumentException(path() + " takes text prompts, not token ids");
            }
            body.putArray("messages").addObject().put("role", "user").put("content", prompt.text());
            // Both names: servers that know only one of them (older ones max_tokens) read that one.
            body.put("max_completion_tokens", prompt.outputLen());
            body.put("max_tokens", prompt.outputLen());
        }

        // NOTE: only chunks with content are timed, so that the first chunk, which says the role
        // and carries no text (Kiln sends it before the first token), is not taken for the first
        // token, nor the last, which only says why the choice ended, for one more token.
        @Override
        boolean carriesTokens(JsonNode choices) {
            for (JsonNode choice : choices) {
                JsonNode content = choice.path("delta").path("content");
                if (content.isTextual() && !content.textValue().isEmpty()) {
                    return true;
                }
            }
            return false;
        }
    };

    private final String path;

    ServingEndpoint(String path) {
        this.path = path;
    }

    /** The route's path below the server's root, as the flag spells it. */
    public String path() {
        return path;
    }

    /** The endpoint the flag names: its path, e.g. {@code /v1/chat/completions}. */
    public static ServingEndpoint fromFlag(String flag) {
        String given = flag.strip().toLowerCase(Locale.ROOT);
        for (ServingEndpoint endpoint : values()) {
            if (endpoint.path.equals(given)) {
                return endpoint;
            }
        }
        throw new IllegalArgumentException("--endpoint must be /v1/completions or /v1/chat/completions, got " + flag);
    }

    /** Whether prompts given as token ids must be turned into text first. */
    public boolean needsText() {
        return this == CHAT_COMPLETIONS;
    }

    /** Puts the prompt and its output length ({@code ignore_eos} makes it exact) into the body. */
    abstract void putPrompt(ObjectNode body, BenchPrompt prompt);

    /** Whether a chunk with these (non-null) choices carries generated tokens. */
    abstract boolean carriesTokens(JsonNode choices);
}
