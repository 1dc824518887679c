package ai.kiln.langchain4j;

import ai.kiln.api.GenerateResult;
import ai.kiln.api.ToolCallFormat;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import java.util.List;

/** Builds LangChain4j's {@link ChatResponse} from what the engine produced. */
final class ChatResponseMapping {

    private ChatResponseMapping() {
    }

    /** The response for a finished request's first (and only) completion. */
    static ChatResponse fromResult(GenerateResult result, String modelName) {
        return response(result.requestId(), modelName, result.text(), result.promptTokenIds().length,
                result.tokenIds().length, result.finishReason());
    }

    /**
     * The response for an answer read for tool calls: the calls found become the AI message's
     * tool execution requests, with finish reason TOOL_EXECUTION unless the answer was cut short
     * (as the server answers "tool_calls" and keeps "length"); without calls, the text as usual.
     */
    static ChatResponse fromToolResult(GenerateResult result, String modelName, ToolCallFormat.Parsed parsed) {
        return toolResponse(result.requestId(), modelName, result.text(), parsed, result.promptTokenIds().length,
                result.tokenIds().length, result.finishReason());
    }

    /** {@link #fromToolResult} from the parts a stream assembles. */
    static ChatResponse toolResponse(String requestId, String modelName, String text, ToolCallFormat.Parsed parsed,
            int promptTokens, int generatedTokens, ai.kiln.api.FinishReason engineFinishReason) {
        if (parsed.calls().isEmpty()) {
            return response(requestId, modelName, text, promptTokens, generatedTokens, engineFinishReason);
        }
        FinishReason finishReason = engineFinishReason == ai.kiln.api.FinishReason.LENGTH ? FinishReason.LENGTH
                : FinishReason.TOOL_EXECUTION;
        List<ToolExecutionRequest> requests = parsed.calls().stream().map(c -> ToolExecutionRequest.builder()
                .id(c.id()).name(c.name()).arguments(c.arguments()).build()).toList();
        AiMessage message = parsed.text() == null ? AiMessage.from(requests) : AiMessage.from(parsed.text(), requests);
        return ChatResponse.builder()
                .aiMessage(message)
                .id(requestId)
                .modelName(modelName)
                .tokenUsage(new TokenUsage(promptTokens, generatedTokens))
                .finishReason(finishReason)
                .build();
    }

    /**
     * @param promptTokens    the prompt as the model saw it, chat template included
     * @param generatedTokens as the engine counts them: a final end-of-sequence token included
     */
    static ChatResponse response(String requestId, String modelName, String text, int promptTokens,
            int generatedTokens, ai.kiln.api.FinishReason finishReason) {
        return ChatResponse.builder()
                .aiMessage(AiMessage.from(text))
                .id(requestId)
                .modelName(modelName)
                .tokenUsage(new TokenUsage(promptTokens, generatedTokens))
                .finishReason(finishReason(finishReason))
                .build();
    }

    /**
     * Kiln's finish reasons in LangChain4j's terms. A stop string ends a completion with STOP, as
     * an end-of-sequence token does. ABORT has no LangChain4j counterpart; the models report an
     * aborted request as an error rather than as a response, so OTHER is only a fallback here.
     */
    static FinishReason finishReason(ai.kiln.api.FinishReason finishReason) {
        return switch (finishReason) {
            case STOP -> FinishReason.STOP;
            case LENGTH -> FinishReason.LENGTH;
            case ABORT -> FinishReason.OTHER;
        };
    }
}
