package ai.kiln.server;

import com.fasterxml.jackson.databind.node.ObjectNode;

/** A response's {@code usage}: the tokens of the prompts and of the completions. */
final class Usage {

    private Usage() {
    }

    /** {@code {"prompt_tokens", "completion_tokens", "total_tokens"}}. */
    static ObjectNode json(int promptTokens, int completionTokens) {
        ObjectNode usage = Exchange.JSON.createObjectNode();
        usage.put("prompt_tokens", promptTokens);
        usage.put("completion_tokens", completionTokens);
        usage.put("total_tokens", promptTokens + completionTokens);
        return usage;
    }

    /** Puts {@code usage} on a whole (not streamed) response and reports the counts to the request log. */
    static void report(Exchange exchange, ObjectNode response, int promptTokens, int completionTokens) {
        response.set("usage", json(promptTokens, completionTokens));
        exchange.promptTokens = promptTokens;
        exchange.completionTokens = completionTokens;
    }
}
