package ai.kiln.langchain4j;

import ai.kiln.api.RequestHandle;
import ai.kiln.api.RequestOutput;
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
 * <p>Once the handler cancels, or a handler callback throws, the request is cancelled on the
 * engine and the relay calls nothing more, except {@code onError} for the exception thrown.
 */
final class StreamingResponseRelay implements Flow.Subscriber<RequestOutput>, StreamingHandle {

    private static final System.Logger LOG = System.getLogger(StreamingResponseRelay.class.getName());

    private final RequestHandle request;
    private final StreamingChatResponseHandler handler;
    private final String modelName;
    // Written on the stream thread only (Flow delivers signals serially).
    private final StringBuilder text = new StringBuilder();
    private int generatedTokens;
    private FinishReason finishReason;
    private boolean ended;
    private volatile Flow.Subscription subscription;
    private volatile boolean cancelled;

    StreamingResponseRelay(RequestHandle request, StreamingChatResponseHandler handler, String modelName) {
        this.request = request;
        this.handler = handler;
        this.modelName = modelName;
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
        // NOTE: a delta may carry tokens and no text yet (half a UTF-8 character, or text that
        // might still become a stop string); LangChain4j's PartialResponse must not be empty.
        if (output.text().isEmpty()) {
            return;
        }
        try {
            handler.onPartialResponse(new PartialResponse(output.text()), new PartialResponseContext(this));
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
        ended = true;
        ChatResponse response = ChatResponseMapping.response(request.requestId(), modelName, text.toString(),
                request.promptTokenIds().length, generatedTokens, finishReason);
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
