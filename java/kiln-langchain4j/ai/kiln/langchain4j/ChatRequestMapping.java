package ai.kiln.langchain4j;

import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import ai.kiln.api.StructuredOutput;
import ai.kiln.api.ToolCallFormat;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
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
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.ToolChoice;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a LangChain4j {@link ChatRequest} into a Kiln {@link GenerateRequest}: the messages
 * become the {@code {"role", "content"}} maps the model's chat template renders, the parameters
 * become {@link SamplingParams}, a JSON response format the output's constraint, and tool
 * specifications the chat template's {@code tools} (with {@code ToolChoice.REQUIRED}, a grammar
 * that makes the output one call). What Kiln cannot do (images, audio) is refused with an
 * {@link UnsupportedFeatureException} naming it, never dropped.
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
     * @param toolCalls the format the model writes tool calls in
     */
    static GenerateRequest toGenerateRequest(ChatRequest chatRequest, String modelName, String requestId,
            ToolCallFormat toolCalls) {
        ChatRequestParameters parameters = chatRequest.parameters();
        checkModelName(parameters, modelName);
        if (parameters.toolChoice() == ToolChoice.REQUIRED && !showsTools(parameters)) {
            throw new InvalidRequestException("toolChoice REQUIRED needs at least one tool specification");
        }
        SamplingParams sampling = toSamplingParams(parameters, toolCalls);
        List<Map<String, Object>> messages = toEngineMessages(chatRequest.messages());
        // NOTE: as apply_chat_template(messages, tools=...): without tools shown, the template sees none.
        Map<String, Object> templateVariables = showsTools(parameters)
                ? Map.of("tools", ToolCallFormat.templateTools(tools(parameters.toolSpecifications())))
                : Map.of();
        return new GenerateRequest(requestId, null, null, messages, sampling, false, templateVariables);
    }

    /**
     * LangChain4j's tool specifications as the engine's tools, their parameters written as the
     * JSON schema the grammar compiles.
     */
    static List<ToolCallFormat.Tool> tools(List<ToolSpecification> specifications) {
        return specifications.stream().map(t -> new ToolCallFormat.Tool(t.name(), t.description(),
                t.parameters() == null ? null : JsonSchemas.toJson(t.parameters()).toString())).toList();
    }

    /** Whether the model is shown the tools and its output read for calls (tools given, choice not NONE). */
    static boolean showsTools(ChatRequestParameters parameters) {
        return parameters.toolSpecifications() != null && !parameters.toolSpecifications().isEmpty()
                && parameters.toolChoice() != ToolChoice.NONE;
    }

    /** Whether a grammar makes the output exactly one call. */
    static boolean forcesToolCall(ChatRequestParameters parameters) {
        return showsTools(parameters) && parameters.toolChoice() == ToolChoice.REQUIRED;
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
     * @param toolCalls the format a forced tool call is written in
     * @throws InvalidRequestException for a value out of range, with Kiln's message naming it, or
     *                                 {@code ToolChoice.REQUIRED} with tools and a JSON response format
     */
    static SamplingParams toSamplingParams(ChatRequestParameters parameters, ToolCallFormat toolCalls) {
        SamplingParams.Builder sampling = SamplingParams.builder().maxTokens(parameters.maxOutputTokens());
        StructuredOutput constraint = constraint(parameters, toolCalls);
        if (constraint != null) {
            sampling.structuredOutput(constraint);
            if (forcesToolCall(parameters) && toolCalls.needsSpecialTokens()) {
                sampling.skipSpecialTokens(false);
            }
        } else if (showsTools(parameters) && toolCalls.needsSpecialTokens()) {
            // NOTE: Mistral's [TOOL_CALLS] is a control token; the text must keep it to be read.
            sampling.skipSpecialTokens(false);
        }
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

    /**
     * The output's constraint: one tool call under {@code ToolChoice.REQUIRED}, JSON (matching
     * the schema, when one is given) for a JSON response format, else none.
     */
    private static StructuredOutput constraint(ChatRequestParameters parameters, ToolCallFormat toolCalls) {
        ResponseFormat format = parameters.responseFormat();
        boolean json = format != null && format.type() == ResponseFormatType.JSON;
        if (forcesToolCall(parameters)) {
            if (json) {
                // NOTE: one grammar per output: the call's or the format's, never both (the server refuses it too).
                throw new InvalidRequestException("toolChoice REQUIRED and a JSON response format cannot both"
                        + " constrain one answer; give one of them");
            }
            return toolCalls.forcedCall(tools(parameters.toolSpecifications()));
        }
        if (!json) {
            return null;
        }
        if (format.jsonSchema() == null || format.jsonSchema().rootElement() == null) {
            return StructuredOutput.jsonObject();
        }
        return StructuredOutput.jsonSchema(JsonSchemas.toJson(format.jsonSchema().rootElement()).toString());
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
                Map<String, Object> assistant = message("assistant", ai.text() == null ? "" : ai.text(), null);
                assistant.put("tool_calls", templateToolCalls(ai.toolExecutionRequests(), index));
                return assistant;
            }
            // NOTE: a tool-less AI message may still have no text (e.g. only thinking); the
            // template needs a string. Earlier turns' thinking is not sent back, as OpenAI's
            // provider does by default: chat templates drop it.
            return message("assistant", ai.text() == null ? "" : ai.text(), null);
        }
        if (message instanceof ToolExecutionResultMessage tool) {
            Map<String, Object> result = message("tool", tool.text(), null);
            result.put("tool_call_id", tool.id());
            return result;
        }
        throw new UnsupportedFeatureException("Kiln cannot send message " + index + " of type " + message.type()
                + " to the model; only system, user, AI and tool result messages are supported");
    }

    /**
     * An AI message's calls as Kiln's server passes them to the template: {@code [{id, type:
     * "function", function: {name, arguments}}]}, the arguments parsed into an object (templates
     * print them with {@code tojson}).
     */
    private static List<Map<String, Object>> templateToolCalls(List<ToolExecutionRequest> requests, int index) {
        List<Map<String, Object>> calls = new ArrayList<>(requests.size());
        for (ToolExecutionRequest request : requests) {
            Object arguments;
            try {
                String text = request.arguments() == null || request.arguments().isBlank() ? "{}" : request.arguments();
                arguments = JsonSchemas.JSON.readValue(text, Map.class);
            } catch (java.io.IOException e) {
                throw new InvalidRequestException("message " + index + ": the arguments of tool call '"
                        + request.name() + "' are not a JSON object: " + request.arguments(), e);
            }
            Map<String, Object> function = new LinkedHashMap<>();
            function.put("name", request.name());
            function.put("arguments", arguments);
            Map<String, Object> call = new LinkedHashMap<>();
            call.put("id", request.id());
            call.put("type", "function");
            call.put("function", function);
            calls.add(call);
        }
        return calls;
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
