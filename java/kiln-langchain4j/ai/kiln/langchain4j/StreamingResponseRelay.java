package ai.kiln.langchain4j;

import ai.kiln.api.RequestHandle;
import ai.kiln.api.RequestOutput;
import ai.kiln.api.ToolCallFormat;
import ai.kiln.api.FinishReason;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.chat.response.StreamingHandle;
import java.util.concurrent.Flow;

/**
 * Subscribes to one streaming request's outputs and relays them to a LangChain4j handler: each
 * non-empty text delta as a partial response, then the whole answer as the complete response,
 * or the failure as an error. It is also the {@link StreamingHandle} the handler gets with each
 * partial response.
 *
 * <p>The outputs come on the engine's stream thread, one at a time. The complete response is
 * assembled here from the outputs (their text and token deltas, the last one's finish reason)
 * rather than taken from the request's result future: that future can complete on the engine
 * loop thread, and a handler run there would hold up every request in the engine.
 *
 * <p>With tools shown to the model, text that may be (the start of) a tool call is held back
 * ({@link ToolCallFormat#callStart}); at the end the whole answer is read for calls: found, they
 * are the complete response's tool execution requests (and the text held back is not streamed);
 * else the text held back is streamed last, so the partial responses still make up the answer.
 * Under a forced call (ToolChoice.REQUIRED) the answer is a call and nothing is streamed as text.
 *
 * <p>Once the handler cancels, or a handler callback throws, the request is cancelled on the
 * engine and the relay calls nothing more, except {@code onError} for the exception thrown.
 */
final class StreamingResponseRelay implements Flow.Subscriber<RequestOutput>, StreamingHandle {

    private static final System.Logger LOG = System.getLogger(StreamingResponseRelay.class.getName());

    private final RequestHandle request;
    private final StreamingChatResponseHandler handler;
    private final String modelName;
    private final ToolCallFormat toolCalls; // null: no tools shown
    private final boolean forcedCall;
    // Written on the stream thread only (Flow delivers signals serially).
    private final StringBuilder text = new StringBuilder();
    private final ToolCallFormat.HoldBack holdBack; // null: no tools shown
    private int generatedTokens;
    private FinishReason finishReason;
    private boolean ended;
    private volatile Flow.Subscription subscription;
    private volatile boolean cancelled;

    StreamingResponseRelay(RequestHandle request, StreamingChatResponseHandler handler, String modelName) {
        this(request, handler, modelName, null, false);
    }

    /**
     * @param toolCalls the format calls are read in where tools were shown to the model, else null
     * @param forcedCall whether a grammar made the answer one call (ToolChoice.REQUIRED)
     */
    StreamingResponseRelay(RequestHandle request, StreamingChatResponseHandler handler, String modelName,
            ToolCallFormat toolCalls, boolean forcedCall) {
        this.request = request;
        this.handler = handler;
        this.modelName = modelName;
        this.toolCalls = toolCalls;
        this.forcedCall = forcedCall;
        this.holdBack = toolCalls == null ? null : toolCalls.holdBack(forcedCall);
    }

    @Override
    public void onSubscribe(Flow.Subscription s) {
        subscription = s;
        // The engine never waits for a reader: it buffers, and cancels a request that falls
        // too far behind, so asking for everything at once loses nothing.
        s.request(Long.MAX_VALUE);
    }

    @Override
    public void onNext(RequestOutput output) {
        if (ended || cancelled) {
            return;
        }
        text.append(output.text());
        generatedTokens += output.tokenIds().length;
        if (output.finished()) {
            finishReason = output.finishReason();
        }
        String piece = holdBack == null ? output.text() : holdBack.take(text.toString());
        // NOTE: a delta may carry tokens and no text yet (half a UTF-8 character, or text that
        // might still become a stop string); LangChain4j's PartialResponse must not be empty.
        if (!piece.isEmpty()) {
            givePartial(piece);
        }
    }

    private void givePartial(String piece) {
        try {
            handler.onPartialResponse(new PartialResponse(piece), new PartialResponseContext(this));
        } catch (RuntimeException e) {
            // A handler that fails would otherwise keep being fed; stop the request and report once.
            stopEngineRequest();
            if (!cancelled) {
                ended = true;
                reportError(handler, e);
            }
        }
    }

    @Override
    public void onError(Throwable failure) {
        if (ended || cancelled) {
            return;
        }
        ended = true;
        reportError(handler, failure);
    }

    @Override
    public void onComplete() {
        if (ended || cancelled) {
            return;
        }
        ChatResponse response;
        if (toolCalls == null) {
            response = ChatResponseMapping.response(request.requestId(), modelName, text.toString(),
                    request.promptTokenIds().length, generatedTokens, finishReason);
        } else {
            ToolCallFormat.Parsed parsed = toolCalls.parse(text.toString(), forcedCall);
            String rest = parsed.calls().isEmpty() ? holdBack.takeRest(text.toString()) : "";
            if (!rest.isEmpty()) {
                // No call after all: the text held back is the answer's end.
                givePartial(rest);
                if (ended || cancelled) {
                    return;
                }
            }
            response = ChatResponseMapping.toolResponse(request.requestId(), modelName, text.toString(), parsed,
                    request.promptTokenIds().length, generatedTokens, finishReason);
        }
        ended = true;
        try {
            handler.onCompleteResponse(response);
        } catch (RuntimeException e) {
            // As LangChain4j's own providers do: a failing completion handler hears of it once.
            reportError(handler, e);
        }
    }

    /** Cancels the request on the engine; no callback follows (see {@link KilnStreamingChatModel}). */
    @Override
    public void cancel() {
        cancelled = true;
        stopEngineRequest();
    }

    @Override
    public boolean isCancelled() {
        return cancelled;
    }

    private void stopEngineRequest() {
        Flow.Subscription s = subscription;
        if (s != null) {
            s.cancel(); // drops the outputs not yet delivered
        }
        request.cancel(); // the engine ends the request and frees its KV blocks at its next step
    }

    /** Tells the handler of a failure; an exception from {@code onError} itself is logged, not thrown. */
    static void reportError(StreamingChatResponseHandler handler, Throwable failure) {
        try {
            handler.onError(failure);
        } catch (RuntimeException e) {
            // Nobody is left to tell; LangChain4j's providers log and drop it too.
            LOG.log(System.Logger.Level.WARNING, "the streaming handler's onError threw; ignored", e);
        }
    }
}
