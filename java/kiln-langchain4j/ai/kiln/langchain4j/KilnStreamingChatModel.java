package ai.kiln.langchain4j;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.RequestHandle;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import java.util.List;

/**
 * A LangChain4j {@link StreamingChatModel} that runs the model in this JVM on a Kiln
 * {@link Engine} and streams the answer as it is generated.
 *
 * <pre>{@code
 * KilnStreamingChatModel model = KilnStreamingChatModel.builder().engine(engine).modelName("llama-3.2-1b").build();
 * model.chat("Tell me a story", new StreamingChatResponseHandler() {
 *     public void onPartialResponse(PartialResponse partial, PartialResponseContext context) {
 *         System.out.print(partial.text());
 *     }
 *     public void onCompleteResponse(ChatResponse response) { ... }
 *     public void onError(Throwable error) { ... }
 * });
 * }</pre>
 *
 * <p>{@code chat} returns at once. The handler is called on one of the engine's stream threads,
 * one callback at a time: {@code onPartialResponse} with each new piece of text (a token or a
 * few; text that could still turn into a stop string is held back until it cannot), then
 * {@code onCompleteResponse} with the whole answer, its token usage and finish reason, or
 * {@code onError}. Concatenated, the partial responses are the complete response's text. With
 * tool specifications (shown through the chat template, as {@link KilnChatModel} shows them),
 * text that may begin a tool call is held back until the answer ends; the calls found are then
 * the complete response's tool execution requests (finish reason TOOL_EXECUTION), and under
 * {@code ToolChoice.REQUIRED} the answer is one call, with no partial text. A
 * handler slower than the engine holds its stream back; one that falls more than
 * {@link EngineOptions#streamBufferSize()} outputs behind has its request cancelled by the
 * engine and gets {@code onError} with a {@link ai.kiln.api.RequestAbortedException}.
 *
 * <p>Every failure reaches the handler's {@code onError} (and the listeners), none is thrown by
 * {@code chat}: requests the model refuses (non-text content;
 * parameters out of range, another model's name; the exceptions {@link KilnChatModel} throws),
 * a failed engine step, the engine closing before the answer is complete (a
 * {@link ai.kiln.api.RequestAbortedException}), and an exception thrown by the handler's
 * {@code onPartialResponse}, which also cancels the request.
 *
 * <p><b>Cancellation.</b> {@code context.streamingHandle().cancel()}, from the
 * {@link PartialResponseContext} of {@code onPartialResponse}, cancels the request on the
 * engine (it stops at the engine's next step and its KV blocks are freed). As LangChain4j
 * documents for {@code StreamingHandle}, the handler then gets no further callback: neither
 * more partial responses, nor {@code onCompleteResponse}, nor {@code onError}; so listeners see
 * the request but no response. {@code isCancelled()} is then true. Called from the handler's
 * own callback this holds exactly; called from another thread, a callback already under way
 * finishes.
 */
public final class KilnStreamingChatModel implements StreamingChatModel, AutoCloseable {

    private final EngineBinding binding;
    private final ChatRequestParameters defaultRequestParameters;
    private final List<ChatModelListener> listeners;

    private KilnStreamingChatModel(KilnModelBuilder.BuiltConfiguration configuration) {
        this.binding = configuration.binding();
        this.defaultRequestParameters = configuration.defaultRequestParameters();
        this.listeners = configuration.listeners();
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public void doChat(ChatRequest chatRequest, StreamingChatResponseHandler handler) {
        RequestHandle request;
        boolean tools;
        try {
            tools = ChatRequestMapping.showsTools(chatRequest.parameters());
            GenerateRequest generate = ChatRequestMapping.toGenerateRequest(chatRequest, binding.modelName(),
                    EngineBinding.newRequestId(), binding.toolCalling()).withStream(true);
            request = binding.submit(generate);
        } catch (RuntimeException e) {
            // A streaming call reports through its handler (and so its listeners), even when the
            // request never reached the engine.
            StreamingResponseRelay.reportError(handler, e);
            return;
        }
        request.subscribe(tools
                ? new StreamingResponseRelay(request, handler, binding.modelName(), binding.toolCalling(),
                        ChatRequestMapping.forcesToolCall(chatRequest.parameters()))
                : new StreamingResponseRelay(request, handler, binding.modelName()));
    }

    @Override
    public ChatRequestParameters defaultRequestParameters() {
        return defaultRequestParameters;
    }

    @Override
    public List<ChatModelListener> listeners() {
        return listeners;
    }

    /** The name responses carry: the model directory's name unless the builder set another. */
    public String modelName() {
        return binding.modelName();
    }

    /** The engine the model runs on (for its metrics, or to share it with a blocking model). */
    public Engine engine() {
        return binding.engine();
    }

    /**
     * Closes the engine if this model created it (from a model directory); an engine given to
     * the builder is left open for its owner to close. Streams in flight on an owned engine get
     * {@link EngineOptions#shutdownGrace()} to finish, then end with {@code onError}. Idempotent.
     */
    @Override
    public void close() {
        binding.closeIfOwned();
    }

    /** Builds a {@link KilnStreamingChatModel}; see {@link KilnModelBuilder} for the settings. */
    public static final class Builder extends KilnModelBuilder<Builder> {

        private Builder() {
        }

        /**
         * Checks the settings and builds the model, creating its engine if a model directory was
         * given (which loads the weights: seconds for a large model).
         *
         * @throws IllegalArgumentException for inconsistent settings
         * @throws ai.kiln.api.EngineException if the engine cannot load the model
         */
        public KilnStreamingChatModel build() {
            return new KilnStreamingChatModel(buildConfiguration());
        }
    }
}
