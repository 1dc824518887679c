package ai.kiln.langchain4j;

import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.Content;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.TextContent;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.ModelNotFoundException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.ToolChoice;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a LangChain4j {@link ChatRequest} into a Kiln {@link GenerateRequest}: the messages
 * become the {@code {"role", "content"}} maps the model's chat template renders, the parameters
 * become {@link SamplingParams}. What Kiln cannot do yet (tools, structured output, images) is
 * refused with an {@link UnsupportedFeatureException} naming it, never dropped.
 */
final class ChatRequestMapping {

    private ChatRequestMapping() {
    }

    /**
     * The engine request for a chat request whose parameters are final (the model's defaults
     * already merged in, as LangChain4j's {@code ChatModel.chat} does before {@code doChat}).
     *
     * @param modelName the model this engine serves; a request naming another is refused
     * @param requestId the id the engine logs and the response carries
     */
    static GenerateRequest toGenerateRequest(ChatRequest chatRequest, String modelName, String requestId) {
        ChatRequestParameters parameters = chatRequest.parameters();
        checkModelName(parameters, modelName);
        SamplingParams sampling = toSamplingParams(parameters);
        List<Map<String, Object>> messages = toEngineMessages(chatRequest.messages());
        return GenerateRequest.ofChat(messages, sampling).withRequestId(requestId);
    }

    private static void checkModelName(ChatRequestParameters parameters, String modelName) {
        String requested = parameters.modelName();
        if (requested != null && !requested.equals(modelName)) {
            throw new ModelNotFoundException("model '" + requested + "' is not served here: this Kiln engine runs '"
                    + modelName + "' only");
        }
    }

    /**
     * The sampling parameters for LangChain4j's common parameters. A parameter left null keeps
     * Kiln's default (vLLM's: temperature 1, top-p 1, top-k off, no penalties), except the
     * output length: Kiln's builder defaults to 16 tokens (vLLM's completions default), which
     * would silently cut chat answers short, so an unset {@code maxOutputTokens} means "up to
     * the context length", as OpenAI's chat API does.
     *
     * @throws UnsupportedFeatureException for tools or a JSON response format
     * @throws InvalidRequestException     for a value out of range, with Kiln's message naming it
     */
    static SamplingParams toSamplingParams(ChatRequestParameters parameters) {
        checkSupported(parameters);
        SamplingParams.Builder sampling = SamplingParams.builder().maxTokens(parameters.maxOutputTokens());
        if (parameters.temperature() != null) {
            sampling.temperature(parameters.temperature());
        }
        if (parameters.topP() != null) {
            sampling.topP(parameters.topP());
        }
        if (parameters.topK() != null) {
            sampling.topK(parameters.topK());
        }
        if (parameters.frequencyPenalty() != null) {
            sampling.frequencyPenalty(parameters.frequencyPenalty());
        }
        if (parameters.presencePenalty() != null) {
            sampling.presencePenalty(parameters.presencePenalty());
        }
        if (parameters.stopSequences() != null) {
            sampling.stop(parameters.stopSequences());
        }
        try {
            return sampling.build();
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException("invalid chat request parameters for Kiln: " + e.getMessage(), e);
        }
    }

    private static void checkSupported(ChatRequestParameters parameters) {
        if (parameters.toolSpecifications() != null && !parameters.toolSpecifications().isEmpty()) {
            throw new UnsupportedFeatureException("Kiln does not support tools yet: the request has "
                    + parameters.toolSpecifications().size() + " tool specification(s) ("
                    + parameters.toolSpecifications().get(0).name() + (parameters.toolSpecifications().size() > 1
                            ? ", ..." : "")
                    + "); remove them or use a provider with tool calling");
        }
        // NOTE: AUTO and NONE without tools ask for nothing; REQUIRED asks for a tool call Kiln cannot make.
        if (parameters.toolChoice() == ToolChoice.REQUIRED) {
            throw new UnsupportedFeatureException("Kiln does not support tools yet, so toolChoice REQUIRED cannot"
                    + " be honoured");
        }
        if (parameters.responseFormat() != null && parameters.responseFormat().type() == ResponseFormatType.JSON) {
            throw new UnsupportedFeatureException("Kiln does not support structured output yet: responseFormat JSON"
                    + (parameters.responseFormat().jsonSchema() != null ? " with a JSON schema" : "")
                    + " cannot be enforced; only TEXT is supported");
        }
    }

    /**
     * The messages as the chat template takes them, in the shape Kiln's OpenAI-compatible
     * server builds: role, content (text) and, for a named user, name.
     */
    static List<Map<String, Object>> toEngineMessages(List<ChatMessage> messages) {
        List<Map<String, Object>> out = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            out.add(toEngineMessage(messages.get(i), i));
        }
        return out;
    }

    private static Map<String, Object> toEngineMessage(ChatMessage message, int index) {
        if (message instanceof SystemMessage system) {
            return message("system", system.text(), null);
        }
        if (message instanceof UserMessage user) {
            return message("user", userText(user, index), user.name());
        }
        if (message instanceof AiMessage ai) {
            if (ai.hasToolExecutionRequests()) {
                throw new UnsupportedFeatureException("Kiln does not support tools yet: message " + index
                        + " is an AI message with " + ai.toolExecutionRequests().size() + " tool execution request(s)");
            }
            // NOTE: a tool-less AI message may still have no text (e.g. only thinking); the
            // template needs a string. Earlier turns' thinking is not sent back, as OpenAI's
            // provider does by default: chat templates drop it.
            return message("assistant", ai.text() == null ? "" : ai.text(), null);
        }
        if (message instanceof ToolExecutionResultMessage tool) {
            throw new UnsupportedFeatureException("Kiln does not support tools yet: message " + index
                    + " is the result of tool '" + tool.toolName() + "'");
        }
        throw new UnsupportedFeatureException("Kiln cannot send message " + index + " of type " + message.type()
                + " to the model; only system, user and AI messages with text are supported");
    }

    /** A user message's text parts, joined as Kiln's server joins OpenAI content parts (no separator). */
    private static String userText(UserMessage user, int index) {
        StringBuilder text = new StringBuilder();
        for (Content content : user.contents()) {
            if (!(content instanceof TextContent part)) {
                throw new UnsupportedFeatureException("Kiln models take text only: message " + index
                        + " holds " + content.type() + " content");
            }
            text.append(part.text());
        }
        return text.toString();
    }

    private static Map<String, Object> message(String role, String content, String name) {
        Map<String, Object> message = new LinkedHashMap<>();
        message.put("role", role);
        message.put("content", content);
        if (name != null) {
            message.put("name", name);
        }
        return message;
    }
}
