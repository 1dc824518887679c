package ai.kiln.langchain4j;

import ai.kiln.api.Engine;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestAbortedException;
import ai.kiln.api.RequestHandle;
import dev.langchain4j.exception.LangChain4jException;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import java.util.List;
import java.util.concurrent.ExecutionException;

/**
 * A LangChain4j {@link ChatModel} that runs the model in this JVM on a Kiln {@link Engine}: each
 * call renders the messages with the model's chat template, generates, and answers with the
 * text, the token usage and the finish reason.
 *
 * <pre>{@code
 * try (KilnChatModel model = KilnChatModel.builder()
 *         .modelDirectory(Path.of("models/llama-3.2-1b"))
 *         .temperature(0.0)
 *         .maxOutputTokens(256)
 *         .build()) {
 *     String answer = model.chat("Name three primes.");
 * }
 * }</pre>
 *
 * <p>Calls may come from any number of threads; the engine batches them. A call blocks its
 * thread until the answer is complete; interrupting the thread cancels the request on the
 * engine and throws. Listeners are called by LangChain4j's own {@link ChatModel#chat(ChatRequest)}
 * around {@link #doChat}, as for every provider.
 *
 * <p>A JSON response format constrains the answer to JSON (matching its schema, when it has
 * one). Tool specifications are shown to the model through its chat template; the calls it
 * writes (in the format the template's markers name, as Kiln's server reads them) come back as
 * the AI message's tool execution requests, with finish reason TOOL_EXECUTION. Under
 * {@code ToolChoice.REQUIRED} a grammar makes the answer exactly one call of one of the tools,
 * its arguments matching the tool's parameters.
 *
 * <p>Failures: non-text content throws
 * {@link dev.langchain4j.exception.UnsupportedFeatureException}; parameters out of range and
 * requests the engine can never serve (a prompt longer than the context) throw
 * {@link dev.langchain4j.exception.InvalidRequestException}; a request naming another model
 * throws {@link dev.langchain4j.exception.ModelNotFoundException}; a request the engine aborted
 * (it closed before the answer was complete) throws {@link RequestAbortedException} rather than
 * returning a truncated answer; a failed engine step throws the engine's
 * {@link ai.kiln.api.EngineException}; a closed engine throws {@link IllegalStateException}.
 */
public final class KilnChatModel implements ChatModel, AutoCloseable {

    private final EngineBinding binding;
    private final ChatRequestParameters defaultRequestParameters;
    private final List<ChatModelListener> listeners;

    private KilnChatModel(KilnModelBuilder.BuiltConfiguration configuration) {
        this.binding = configuration.binding();
        this.defaultRequestParameters = configuration.defaultRequestParameters();
        this.listeners = configuration.listeners();
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public ChatResponse doChat(ChatRequest chatRequest) {
        ai.kiln.api.ToolCallFormat toolCalls = binding.toolCalling();
        GenerateRequest request = ChatRequestMapping.toGenerateRequest(chatRequest, binding.modelName(),
                EngineBinding.newRequestId(), toolCalls);
        RequestHandle handle = binding.submit(request);
        GenerateResult result = await(handle);
        if (result.finishReason() == ai.kiln.api.FinishReason.ABORT) {
            throw new RequestAbortedException("request " + result.requestId() + " was aborted before its answer was"
                    + " complete (" + result.completions().get(0).stopReason() + ")");
        }
        if (!ChatRequestMapping.showsTools(chatRequest.parameters())) {
            return ChatResponseMapping.fromResult(result, binding.modelName());
        }
        return ChatResponseMapping.fromToolResult(result, binding.modelName(),
                toolCalls.parse(result.text(), ChatRequestMapping.forcesToolCall(chatRequest.parameters())));
    }

    /** Waits for the result; an interrupt cancels the request so that it stops taking engine steps. */
    private static GenerateResult await(RequestHandle handle) {
        try {
            return handle.result().get();
        } catch (InterruptedException e) {
            handle.cancel();
            Thread.currentThread().interrupt();
            throw new LangChain4jException("interrupted while waiting for request " + handle.requestId()
                    + "; the request was cancelled", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException failure) {
                throw failure;
            }
            throw new LangChain4jException("request " + handle.requestId() + " failed: " + e.getCause(), e.getCause());
        }
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

    /** The engine the model runs on (for its metrics, or to share it with a streaming model). */
    public Engine engine() {
        return binding.engine();
    }

    /**
     * Closes the engine if this model created it (from a model directory); an engine given to
     * the builder is left open for its owner to close. Idempotent.
     */
    @Override
    public void close() {
        binding.closeIfOwned();
    }

    /** Builds a {@link KilnChatModel}; see {@link KilnModelBuilder} for the settings. */
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
        public KilnChatModel build() {
            return new KilnChatModel(buildConfiguration());
        }
    }
}
