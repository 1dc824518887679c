package ai.kiln.springai;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineException;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestHandle;
import ai.kiln.api.RequestOutput;
import ai.kiln.api.SamplingParams;
import ai.kiln.api.ToolCallFormat;
import com.fasterxml.jackson.databind.ObjectMapper;
import ai.kiln.api.FinishReason;
import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationRegistry;
import io.micrometer.observation.contextpropagation.ObservationThreadLocalAccessor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.Message;
import org.springframework.ai.chat.messages.ToolResponseMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.metadata.ChatGenerationMetadata;
import org.springframework.ai.chat.metadata.ChatResponseMetadata;
import org.springframework.ai.chat.metadata.DefaultUsage;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.model.Generation;
import org.springframework.ai.chat.model.MessageAggregator;
import org.springframework.ai.chat.observation.ChatModelObservationContext;
import org.springframework.ai.chat.observation.ChatModelObservationConvention;
import org.springframework.ai.chat.observation.ChatModelObservationDocumentation;
import org.springframework.ai.chat.observation.DefaultChatModelObservationConvention;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.tool.ToolCallback;
import reactor.adapter.JdkFlowAdapter;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * A Spring AI {@link ChatModel} (blocking and streaming) that runs in this JVM on a Kiln
 * {@link Engine}: a prompt's system, user and assistant messages go to the engine as chat
 * messages, which the model's chat template renders.
 *
 * <p>Options: the request's {@link Prompt#getOptions() options} override this model's
 * {@link #getOptions() default options} field by field (see {@link KilnChatOptions.Builder#override});
 * any Spring AI {@code ChatOptions} is taken, and a {@link KilnChatOptions} adds min_p,
 * repetition penalty and seed. A request naming a model other than the one served is refused.
 *
 * <p>Replies carry the finish reason as the engine's {@link FinishReason} name ({@code "STOP"},
 * {@code "LENGTH"}, {@code "ABORT"}), the engine's request id, the served model name and the
 * usage (prompt tokens, completion tokens, prompt tokens found in the prefix cache).
 *
 * <p>Streaming: {@link #stream} is cold (each subscription submits one request) and emits one
 * {@link ChatResponse} per piece of new text, then a last one with the finish reason and usage.
 * Cancelling the subscription cancels the engine request. Outputs arrive on the engine's stream
 * threads and honour the subscriber's demand, but the engine never waits for a reader: a
 * subscriber more than {@code EngineOptions.streamBufferSize} outputs behind has its request
 * cancelled, and its stream fails with a {@code RequestAbortedException} saying so.
 *
 * <p>Structured output: an output schema in the options ({@link KilnChatOptions#getOutputSchema()},
 * which a {@code ChatClient} sets from its {@code BeanOutputConverter} under
 * {@code AdvisorParams.ENABLE_NATIVE_STRUCTURED_OUTPUT}) constrains the reply to JSON that the
 * schema accepts, by the engine's grammar; a schema the grammar cannot express is an
 * {@link IllegalArgumentException} naming the keyword.
 *
 * <p>Tools: the tool callbacks' definitions reach the chat template as its
 * {@code tools} variable, as Kiln's server passes them; the calls the model writes, in the format
 * the template's markers name, come back as the reply's {@link AssistantMessage#getToolCalls()}
 * with finish reason {@code "TOOL_CALLS"}, for the {@code ChatClient}'s tool-calling advisor to
 * run; tool responses and assistant tool calls in the history reach the template as the server
 * passes them. {@link KilnChatOptions#getToolChoice()} {@code "required"} makes the reply exactly
 * one call, by a grammar.
 *
 * When streaming, text that may begin a call is held back until the reply ends, and the last
 * response carries the calls read from the whole reply.
 *
 * <p>Not supported yet, and refused with an {@link UnsupportedOperationException}: media. This model does not close the engine,
 * which its creator owns. Thread-safe.
 */
public final class KilnChatModel implements ChatModel {

    /** The provider name in observations ({@code gen_ai.system}). */
    public static final String PROVIDER_NAME = "kiln";

    /** Generation metadata key: the stop string or token id that ended the reply, or the abort's reason. */
    public static final String STOP_REASON_METADATA = "stop-reason";
    /** Response metadata key: the {@code Duration} from arrival to the first scheduled step. */
    public static final String QUEUE_DURATION_METADATA = "queue-duration";
    /** Response metadata key: the {@code Duration} from arrival to the first generated token. */
    public static final String TIME_TO_FIRST_TOKEN_METADATA = "time-to-first-token";
    /** Response metadata key: the {@code Duration} from arrival to finish. */
    public static final String TOTAL_DURATION_METADATA = "total-duration";

    private static final ObjectMapper JSON = new ObjectMapper();

    private static final ChatModelObservationConvention DEFAULT_OBSERVATION_CONVENTION =
            new DefaultChatModelObservationConvention();

    private final Engine engine;
    private final KilnChatOptions defaultOptions;
    private final ObservationRegistry observationRegistry;
    private final ChatModelObservationConvention observationConvention;

    private KilnChatModel(Builder builder) {
        this.engine = Objects.requireNonNull(builder.engine, "engine");
        KilnChatOptions options = builder.defaultOptions == null ? KilnChatOptions.builder().build()
                : builder.defaultOptions;
        String modelName = builder.modelName != null ? builder.modelName
                : options.getModel() != null ? options.getModel() : engine.modelName();
        if (options.getModel() != null && !options.getModel().equals(modelName)) {
            throw new IllegalArgumentException("the default options name model '" + options.getModel()
                    + "' but this model is served as '" + modelName + "'");
        }
        // Checked now, so that bad defaults fail at startup rather than at the first request.
        options.toSamplingParams();
        this.defaultOptions = options.mutate().model(modelName).build();
        this.observationRegistry = Objects.requireNonNull(builder.observationRegistry, "observationRegistry");
        this.observationConvention = builder.observationConvention;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The options a request starts from; their model is the served model's name. */
    @Override
    public KilnChatOptions getOptions() {
        return defaultOptions;
    }

    /** The name this model is served as (and reports in responses). */
    public String modelName() {
        return defaultOptions.getModel();
    }

    /** The engine the requests run on. */
    public Engine engine() {
        return engine;
    }

    /**
     * Generates a reply, blocking until it is complete. An interrupt cancels the engine request.
     * A request the engine aborts (it is closing) returns what was generated, with finish reason
     * {@code "ABORT"}.
     *
     * @throws UnsupportedOperationException for media
     * @throws IllegalArgumentException      for an option out of range, another model's name, or a
     *                                       prompt that can never fit ({@code RequestRejectedException})
     */
    @Override
    public ChatResponse call(Prompt prompt) {
        PreparedRequest prepared = prepare(prompt, false);
        ChatModelObservationContext observationContext = ChatModelObservationContext.builder()
                .prompt(prepared.prompt()).provider(PROVIDER_NAME).build();
        return ChatModelObservationDocumentation.CHAT_MODEL_OPERATION
                .observation(observationConvention, DEFAULT_OBSERVATION_CONVENTION, () -> observationContext,
                        observationRegistry)
                .observe(() -> {
                    GenerateResult result = await(engine.submit(prepared.request()));
                    GenerateResult.Completion completion = result.completions().get(0);
                    Generation generation = prepared.toolCalls() == null
                            ? generation(completion.text(), completion.finishReason(), completion.stopReason())
                            : toolGeneration(prepared.toolCalls().parse(completion.text(), prepared.forced()),
                                    completion);
                    ChatResponse response = new ChatResponse(List.of(generation), finalMetadata(result));
                    observationContext.setResponse(response);
                    return response;
                });
    }

    /**
     * Streams a reply: one response per piece of new text, the last one with the finish reason
     * and usage. The request is checked here and submitted on subscription.
     *
     * @throws UnsupportedOperationException for media
     * @throws IllegalArgumentException      for an option out of range or another model's name
     */
    @Override
    public Flux<ChatResponse> stream(Prompt prompt) {
        PreparedRequest prepared = prepare(prompt, true);
        return Flux.deferContextual(contextView -> {
            ChatModelObservationContext observationContext = ChatModelObservationContext.builder()
                    .prompt(prepared.prompt()).provider(PROVIDER_NAME).streaming(true).build();
            Observation observation = ChatModelObservationDocumentation.CHAT_MODEL_OPERATION.observation(
                    observationConvention, DEFAULT_OBSERVATION_CONVENTION, () -> observationContext,
                    observationRegistry);
            Observation parent = contextView.getOrDefault(ObservationThreadLocalAccessor.KEY, null);
            observation.parentObservation(parent);
            observation.start();
            RequestHandle handle;
            try {
                handle = engine.submit(prepared.request());
            } catch (RuntimeException e) {
                observation.error(e);
                observation.stop();
                return Flux.error(e);
            }
            ToolHoldBack toolText = prepared.toolCalls() == null ? null
                    : new ToolHoldBack(prepared.toolCalls(), prepared.forced());
            Flux<ChatResponse> responses = JdkFlowAdapter.flowPublisherToFlux(handle)
                    // Outputs whose text is held back (a possible stop string, a partial character)
                    // say nothing to a chat client; the last one always goes out, for its metadata.
                    .filter(output -> output.finished() || !output.text().isEmpty())
                    .concatMap(output -> {
                        if (toolText != null) {
                            toolText.append(output.text());
                            if (!output.finished()) {
                                String piece = toolText.streamable();
                                return piece.isEmpty() ? Mono.empty() : Mono.just(deltaResponse(output, piece));
                            }
                            return Mono.fromFuture(handle.result()).map(result -> toolText.lastResponse(result));
                        }
                        return output.finished()
                                // The result future completes just after the last output; it has the
                                // whole request's usage and timing.
                                ? Mono.fromFuture(handle.result()).map(result -> lastResponse(output, result))
                                : Mono.just(deltaResponse(output, output.text()));
                    })
                    // NOTE: cancelling the Flow subscription already cancels the request; this also
                    // covers a cancel that comes while the last response waits for the result.
                    .doOnCancel(handle::cancel)
                    .doOnError(observation::error)
                    .doFinally(signal -> observation.stop())
                    .contextWrite(context -> context.put(ObservationThreadLocalAccessor.KEY, observation));
            return new MessageAggregator().aggregate(responses, observationContext::setResponse);
        });
    }

    /**
     * The prompt with its options resolved, and the engine request for it.
     *
     * @param toolCalls the format the reply's calls are read in; null when the model is shown no tools
     * @param forced    whether a grammar makes the reply exactly one call
     */
    private record PreparedRequest(Prompt prompt, GenerateRequest request, ToolCallFormat toolCalls, boolean forced) {
    }

    private PreparedRequest prepare(Prompt prompt, boolean stream) {
        Objects.requireNonNull(prompt, "prompt");
        KilnChatOptions options = defaultOptions.mutate().override(prompt.getOptions()).build();
        if (!modelName().equals(options.getModel())) {
            throw new IllegalArgumentException("the request names model '" + options.getModel()
                    + "', and this Kiln chat model serves '" + modelName() + "'");
        }
        List<ToolCallFormat.Tool> tools = shownTools(options);
        boolean forced = "required".equals(options.getToolChoice());
        if (forced && tools.isEmpty()) {
            throw new IllegalArgumentException("toolChoice 'required' needs at least one tool callback");
        }
        List<Map<String, Object>> messages = chatMessages(prompt.getInstructions());
        SamplingParams params = options.toSamplingParams();
        ToolCallFormat format = null;
        Map<String, Object> templateVariables = Map.of();
        if (!tools.isEmpty()) {
            format = ToolCallFormat.ofTemplate(engine.hasTokenizer() ? engine.tokenizer().chatTemplateText() : null);
            templateVariables = Map.of("tools", ToolCallFormat.templateTools(tools));
            SamplingParams.Builder withTools = params.toBuilder();
            if (forced) {
                if (options.getOutputSchema() != null) {
                    // NOTE: one grammar per reply: the call's or the schema's (the server refuses both too).
                    throw new IllegalArgumentException("toolChoice 'required' and an output schema cannot both"
                            + " constrain one reply; give one of them");
                }
                withTools.structuredOutput(format.forcedCall(tools));
            }
            if (format.needsSpecialTokens()) {
                // NOTE: Mistral's [TOOL_CALLS] is a control token; the text must keep it to be read.
                withTools.skipSpecialTokens(false);
            }
            params = withTools.build();
        }
        GenerateRequest request = new GenerateRequest(null, null, null, messages, params, stream, templateVariables);
        return new PreparedRequest(prompt.mutate().chatOptions(options).build(), request, format, forced);
    }

    /** The tools the model is shown: the callbacks' definitions, none under toolChoice "none". */
    private static List<ToolCallFormat.Tool> shownTools(KilnChatOptions options) {
        List<ToolCallback> callbacks = options.getToolCallbacks();
        if (callbacks == null || callbacks.isEmpty() || "none".equals(options.getToolChoice())) {
            return List.of();
        }
        return callbacks.stream().map(ToolCallback::getToolDefinition)
                .map(d -> new ToolCallFormat.Tool(d.name(), d.description(), d.inputSchema())).toList();
    }

    /**
     * A reply read for tool calls: the calls found become the message's tool calls, with finish
     * reason "TOOL_CALLS" unless the reply was cut short; without calls, the text as usual.
     */
    private static Generation toolGeneration(ToolCallFormat.Parsed parsed, GenerateResult.Completion completion) {
        if (parsed.calls().isEmpty()) {
            return generation(completion.text(), completion.finishReason(), completion.stopReason());
        }
        List<AssistantMessage.ToolCall> calls = parsed.calls().stream()
                .map(c -> new AssistantMessage.ToolCall(c.id(), "function", c.name(), c.arguments())).toList();
        String finishReason = completion.finishReason() == FinishReason.LENGTH ? FinishReason.LENGTH.name()
                : "TOOL_CALLS";
        return new Generation(AssistantMessage.builder().content(parsed.text() == null ? "" : parsed.text())
                .toolCalls(calls).build(), ChatGenerationMetadata.builder().finishReason(finishReason).build());
    }

    /**
     * Spring AI messages as the engine's chat messages ({"role", "content"}), for the chat
     * template; tool calls and responses in the shape Kiln's server passes them.
     */
    private static List<Map<String, Object>> chatMessages(List<Message> instructions) {
        if (instructions.isEmpty()) {
            throw new IllegalArgumentException("the prompt has no messages");
        }
        List<Map<String, Object>> messages = new ArrayList<>(instructions.size());
        for (int i = 0; i < instructions.size(); i++) {
            Message message = instructions.get(i);
            if (message instanceof ToolResponseMessage toolResponses) {
                for (ToolResponseMessage.ToolResponse response : toolResponses.getResponses()) {
                    Map<String, Object> tool = new LinkedHashMap<>();
                    tool.put("role", "tool");
                    tool.put("content", response.responseData());
                    tool.put("tool_call_id", response.id());
                    messages.add(tool);
                }
                continue;
            }
            String role = switch (message.getMessageType()) {
                case SYSTEM -> "system";
                case USER -> "user";
                case ASSISTANT -> "assistant";
                case TOOL -> throw new IllegalArgumentException("message " + i + " is a tool message but not a"
                        + " ToolResponseMessage");
            };
            if (message instanceof UserMessage user && !user.getMedia().isEmpty()) {
                throw new UnsupportedOperationException("message " + i + " carries " + user.getMedia().size()
                        + " media item(s); Kiln serves text-only models");
            }
            Map<String, Object> chatMessage = new LinkedHashMap<>();
            chatMessage.put("role", role);
            chatMessage.put("content", message.getText() == null ? "" : message.getText());
            if (message instanceof AssistantMessage assistant && assistant.hasToolCalls()) {
                chatMessage.put("tool_calls", templateToolCalls(assistant.getToolCalls(), i));
            }
            messages.add(chatMessage);
        }
        return messages;
    }

    /**
     * An assistant message's calls as Kiln's server passes them to the template: {@code [{id,
     * type: "function", function: {name, arguments}}]}, the arguments parsed into an object.
     */
    private static List<Map<String, Object>> templateToolCalls(List<AssistantMessage.ToolCall> toolCalls, int index) {
        List<Map<String, Object>> calls = new ArrayList<>(toolCalls.size());
        for (AssistantMessage.ToolCall toolCall : toolCalls) {
            Object arguments;
            try {
                String text = toolCall.arguments() == null || toolCall.arguments().isBlank() ? "{}"
                        : toolCall.arguments();
                arguments = JSON.readValue(text, Map.class);
            } catch (java.io.IOException e) {
                throw new IllegalArgumentException("message " + index + ": the arguments of tool call '"
                        + toolCall.name() + "' are not a JSON object: " + toolCall.arguments(), e);
            }
            Map<String, Object> function = new LinkedHashMap<>();
            function.put("name", toolCall.name());
            function.put("arguments", arguments);
            Map<String, Object> call = new LinkedHashMap<>();
            call.put("id", toolCall.id());
            call.put("type", "function");
            call.put("function", function);
            calls.add(call);
        }
        return calls;
    }

    private static GenerateResult await(RequestHandle handle) {
        try {
            return handle.result().get();
        } catch (InterruptedException e) {
            handle.cancel();
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for Kiln request " + handle.requestId()
                    + "; it was cancelled", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException failure) {
                throw failure;
            }
            throw new EngineException("Kiln request " + handle.requestId() + " failed: " + e.getCause(), e.getCause());
        }
    }

    private static Generation generation(String text, FinishReason finishReason, String stopReason) {
        ChatGenerationMetadata.Builder metadata = ChatGenerationMetadata.builder();
        if (finishReason != null) {
            metadata.finishReason(finishReason.name());
        }
        if (stopReason != null) {
            metadata.metadata(STOP_REASON_METADATA, stopReason);
        }
        return new Generation(AssistantMessage.builder().content(text).build(),
                finishReason == null && stopReason == null ? ChatGenerationMetadata.NULL : metadata.build());
    }

    private ChatResponse deltaResponse(RequestOutput output, String text) {
        return new ChatResponse(List.of(generation(text, null, null)),
                ChatResponseMetadata.builder().id(output.requestId()).model(modelName()).build());
    }

    /**
     * A streamed reply shown tools: text that may begin a call is held back until the reply ends
     * (kiln-core's {@link ToolCallFormat#callStart}); the last response then carries the calls read
     * from the whole reply (finish reason "TOOL_CALLS"), or, with none, the text held back. Under a
     * forced call nothing is streamed as text. One per subscription; its calls come serially.
     */
    private final class ToolHoldBack {
        private final ToolCallFormat format;
        private final boolean forced;
        private final ToolCallFormat.HoldBack holdBack;
        private final StringBuilder text = new StringBuilder();

        ToolHoldBack(ToolCallFormat format, boolean forced) {
            this.format = format;
            this.forced = forced;
            this.holdBack = format.holdBack(forced);
        }

        void append(String delta) {
            text.append(delta);
        }

        /** The text that may be streamed now and was not yet. */
        String streamable() {
            return holdBack.take(text.toString());
        }

        ChatResponse lastResponse(GenerateResult result) {
            GenerateResult.Completion completion = result.completions().get(0);
            ToolCallFormat.Parsed parsed = format.parse(text.toString(), forced);
            Generation generation;
            if (parsed.calls().isEmpty()) {
                generation = generation(holdBack.takeRest(text.toString()), completion.finishReason(),
                        completion.stopReason());
            } else {
                // The text before the calls was streamed already: this response adds the calls.
                generation = toolGeneration(new ToolCallFormat.Parsed(null, parsed.calls()), completion);
            }
            return new ChatResponse(List.of(generation), finalMetadata(result));
        }
    }

    private ChatResponse lastResponse(RequestOutput output, GenerateResult result) {
        return new ChatResponse(List.of(generation(output.text(), output.finishReason(), output.stopReason())),
                finalMetadata(result));
    }

    private ChatResponseMetadata finalMetadata(GenerateResult result) {
        int promptTokens = result.promptTokenIds().length;
        int completionTokens = result.numGeneratedTokens();
        DefaultUsage usage = new DefaultUsage(promptTokens, completionTokens, promptTokens + completionTokens, null,
                (long) result.numCachedPromptTokens(), null);
        ChatResponseMetadata.Builder metadata = ChatResponseMetadata.builder().id(result.requestId())
                .model(modelName()).usage(usage);
        GenerateResult.Timing timing = result.timing();
        if (timing != null) {
            metadata.keyValue(QUEUE_DURATION_METADATA, timing.queued())
                    .keyValue(TIME_TO_FIRST_TOKEN_METADATA, timing.timeToFirstToken())
                    .keyValue(TOTAL_DURATION_METADATA, timing.total());
        }
        return metadata.build();
    }

    @Override
    public String toString() {
        return "KilnChatModel[" + modelName() + " on " + engine.deviceDescription() + "]";
    }

    /** Builds a {@link KilnChatModel}; only the engine is required. */
    public static final class Builder {
        private Engine engine;
        private String modelName;
        private KilnChatOptions defaultOptions;
        private ObservationRegistry observationRegistry = ObservationRegistry.NOOP;
        private ChatModelObservationConvention observationConvention;

        private Builder() {
        }

        /** The engine to run on (not closed by the model). */
        public Builder engine(Engine engine) {
            this.engine = engine;
            return this;
        }

        /**
         * The name the model is served as: reported in responses and observations, and the only
         * model name a request may give. Default: the default options' model, else "kiln".
         */
        public Builder modelName(String modelName) {
            this.modelName = modelName;
            return this;
        }

        /** What a request's options start from (checked at build). */
        public Builder defaultOptions(KilnChatOptions options) {
            this.defaultOptions = options;
            return this;
        }

        /** Where call and stream observations go; default: none. */
        public Builder observationRegistry(ObservationRegistry registry) {
            this.observationRegistry = registry;
            return this;
        }

        /** A convention replacing Spring AI's default chat-model observation convention; null: the default. */
        public Builder observationConvention(ChatModelObservationConvention convention) {
            this.observationConvention = convention;
            return this;
        }

        public KilnChatModel build() {
            return new KilnChatModel(this);
        }
    }
}
