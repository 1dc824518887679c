package ai.kiln.api;

import ai.kiln.api.SamplingParams;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One generation request. The prompt is exactly one of: text (tokenized with the model's special
 * tokens, e.g. BOS), token ids (used as they are) or chat messages (rendered with the model's
 * chat template, then tokenized without adding special tokens).
 *
 * @param requestId      the caller's id for logs and outputs; null: the engine assigns one
 * @param prompt         prompt text, or null
 * @param promptTokenIds prompt token ids, or null
 * @param messages       chat messages ({"role": ..., "content": ...}), or null
 * @param params         sampling and stopping
 * @param stream         publish outputs as they are generated (else one output per completion at the end)
 * @param templateVariables with messages: further variables of the chat template, as the keyword
 *                       arguments of Hugging Face's apply_chat_template (e.g. {@code tools}); empty otherwise
 */
public record GenerateRequest(String requestId, String prompt, int[] promptTokenIds,
        List<Map<String, Object>> messages, SamplingParams params, boolean stream,
        Map<String, Object> templateVariables) {

    public GenerateRequest(String requestId, String prompt, int[] promptTokenIds,
            List<Map<String, Object>> messages, SamplingParams params, boolean stream) {
        this(requestId, prompt, promptTokenIds, messages, params, stream, Map.of());
    }

    public GenerateRequest {
        int given = (prompt != null ? 1 : 0) + (promptTokenIds != null ? 1 : 0) + (messages != null ? 1 : 0);
        if (given != 1) {
            throw new IllegalArgumentException("a request needs exactly one of prompt, prompt_token_ids and messages, got "
                    + given);
        }
        Objects.requireNonNull(params, "params");
        if (promptTokenIds != null) {
            promptTokenIds = promptTokenIds.clone();
        }
        if (messages != null) {
            messages = List.copyOf(messages);
        }
        templateVariables = templateVariables == null ? Map.of() : Map.copyOf(templateVariables);
        if (messages == null && !templateVariables.isEmpty()) {
            throw new IllegalArgumentException("chat template variables need messages");
        }
    }

    public static GenerateRequest of(String prompt, SamplingParams params) {
        return new GenerateRequest(null, prompt, null, null, params, false);
    }

    public static GenerateRequest ofTokens(int[] promptTokenIds, SamplingParams params) {
        return new GenerateRequest(null, null, promptTokenIds, null, params, false);
    }

    public static GenerateRequest ofChat(List<Map<String, Object>> messages, SamplingParams params) {
        return new GenerateRequest(null, null, null, messages, params, false);
    }

    public GenerateRequest withRequestId(String id) {
        return new GenerateRequest(id, prompt, promptTokenIds, messages, params, stream, templateVariables);
    }

    public GenerateRequest withStream(boolean streamOutputs) {
        return new GenerateRequest(requestId, prompt, promptTokenIds, messages, params, streamOutputs, templateVariables);
    }

    @Override
    public int[] promptTokenIds() {
        return promptTokenIds == null ? null : promptTokenIds.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GenerateRequest r && Objects.equals(requestId, r.requestId)
                && Objects.equals(prompt, r.prompt) && Arrays.equals(promptTokenIds, r.promptTokenIds)
                && Objects.equals(messages, r.messages) && params.equals(r.params) && stream == r.stream
                && templateVariables.equals(r.templateVariables);
    }

    @Override
    public int hashCode() {
        return Objects.hash(requestId, prompt, Arrays.hashCode(promptTokenIds), messages, params, stream, templateVariables);
    }

    @Override
    public String toString() {
        return "GenerateRequest[" + (requestId == null ? "" : requestId + ", ")
                + (prompt != null ? "prompt=" + prompt.length() + " chars"
                        : promptTokenIds != null ? "prompt_token_ids=" + promptTokenIds.length
                                : "messages=" + messages.size())
                + ", " + params + ", stream=" + stream + "]";
    }
}
