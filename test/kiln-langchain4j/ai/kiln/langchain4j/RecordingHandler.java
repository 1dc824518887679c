package ai.kiln.langchain4j;

import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.chat.response.StreamingHandle;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;

/**
 * A streaming handler that records every callback in order, with the thread it came on, and
 * completes {@link #end} with the complete response or the error. An optional action runs on
 * each partial response (to cancel, or to throw).
 */
final class RecordingHandler implements StreamingChatResponseHandler {

    /** One callback: "partial", "complete" or "error", its payload and its thread. */
    record Event(String kind, Object payload, String thread) {
    }

    final List<Event> events = new CopyOnWriteArrayList<>();
    final CompletableFuture<Object> end = new CompletableFuture<>();
    private final BiConsumer<Integer, StreamingHandle> onPartial;
    private volatile StreamingHandle handle;

    RecordingHandler() {
        this((count, handle) -> { });
    }

    /** @param onPartial called with the number of partial responses so far (1 for the first) and the handle */
    RecordingHandler(BiConsumer<Integer, StreamingHandle> onPartial) {
        this.onPartial = onPartial;
    }

    @Override
    public void onPartialResponse(PartialResponse partialResponse, PartialResponseContext context) {
        events.add(new Event("partial", partialResponse.text(), Thread.currentThread().getName()));
        handle = context.streamingHandle();
        onPartial.accept(partials().size(), context.streamingHandle());
    }

    @Override
    public void onCompleteResponse(ChatResponse completeResponse) {
        events.add(new Event("complete", completeResponse, Thread.currentThread().getName()));
        end.complete(completeResponse);
    }

    @Override
    public void onError(Throwable error) {
        events.add(new Event("error", error, Thread.currentThread().getName()));
        end.complete(error);
    }

    List<String> partials() {
        return events.stream().filter(e -> e.kind().equals("partial")).map(e -> (String) e.payload()).toList();
    }

    List<String> kinds() {
        return events.stream().map(Event::kind).toList();
    }

    /** The handle the last partial response came with, or null before the first. */
    StreamingHandle handle() {
        return handle;
    }

    /** Waits (up to 10 s) for the complete response. */
    ChatResponse awaitResponse() {
        Object outcome = awaitEnd();
        if (outcome instanceof Throwable error) {
            throw new AssertionError("the stream failed instead of completing", error);
        }
        return (ChatResponse) outcome;
    }

    /** Waits (up to 10 s) for the error. */
    Throwable awaitError() {
        Object outcome = awaitEnd();
        if (outcome instanceof ChatResponse response) {
            throw new AssertionError("the stream completed instead of failing: " + response);
        }
        return (Throwable) outcome;
    }

    private Object awaitEnd() {
        try {
            return end.get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("the stream did not end within 10 s; callbacks so far: " + kinds(), e);
        }
    }
}
