package ai.kiln.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A completion streamed as OpenAI streams it, over one {@link SseStream}: JSON chunks (each with
 * {@code "usage": null} when the client asked for usage), then a chunk with the usage and no
 * choices (when asked for), then {@code [DONE]}. A failure once the stream has started (its 200
 * already sent) is told in an error event before the end.
 */
final class ChunkStream {

    private final SseStream sse;
    private final boolean includeUsage;

    ChunkStream(SseStream sse, boolean includeUsage) {
        this.sse = sse;
        this.includeUsage = includeUsage;
    }

    /** Sends one chunk, whose fields are all set. */
    void send(ObjectNode chunk) {
        if (includeUsage) {
            chunk.putNull("usage");
        }
        sse.send(json(chunk));
    }

    /** Ends the stream: {@code usageChunk} (an envelope) with the call's usage when the client asked for it, then [DONE]. */
    void finish(ObjectNode usageChunk, GenerationCall call) {
        if (includeUsage) {
            usageChunk.putArray("choices");
            usageChunk.set("usage", Usage.json(call.promptTokens(), call.completionTokens()));
            sse.send(json(usageChunk));
        }
        sse.finish();
    }

    /** Ends the stream with an error event naming {@code failure}, then [DONE]. */
    void fail(Throwable failure) {
        ApiError error = GenerationErrors.failureError(failure);
        sse.send(json(ApiError.json(error.getMessage(), error.type, null, error.code)));
        sse.finish();
    }

    private static String json(ObjectNode node) {
        try {
            return Exchange.JSON.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
