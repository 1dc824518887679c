package ai.kiln.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpHeaderValue;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;

/** One HTTP request being answered: Jetty's request, response and completion callback, with Kiln's request id. */
final class Exchange {

    static final ObjectMapper JSON = new ObjectMapper();

    final Request request;
    final Response response;
    final Callback callback;
    final String requestId;
    final long arrivalNanos;
    private final RequestLog log;
    /** Prompt and generated token counts, for the request log; set by the generation routes. */
    volatile int promptTokens = -1;
    volatile int completionTokens = -1;

    Exchange(Request request, Response response, Callback callback, String requestId, RequestLog log) {
        this.request = request;
        this.response = response;
        this.callback = callback;
        this.requestId = requestId;
        this.arrivalNanos = request.getBeginNanoTime();
        this.log = log;
    }

    /**
     * Runs one step of answering, on whichever thread (the routing's, or a body reader's later):
     * an {@link ApiError} it throws is the answer, and any other exception a logged 500.
     */
    void answering(Runnable step) {
        try {
            step.run();
        } catch (ApiError e) {
            sendError(e);
        } catch (RuntimeException e) {
            log.internalError(requestId, e);
            sendError(ApiError.internal("Internal error: " + e.getMessage()));
        }
    }

    void sendJson(int status, Object body) {
        byte[] bytes;
        try {
            bytes = JSON.writeValueAsBytes(body);
        } catch (JsonProcessingException e) {
            sendError(ApiError.internal("could not write the response: " + e.getOriginalMessage()));
            return;
        }
        send(status, "application/json", bytes);
    }

    void send(int status, String contentType, byte[] body) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, contentType);
        response.write(true, ByteBuffer.wrap(body), callback);
    }

    /**
     * Answers {@code error}. NOTE: an error answered before the body is read (401, 404, 405, 413,
     * 503, ...) leaves bytes unread. A body that has all arrived is dropped and the connection kept
     * alive; one still arriving is not waited for: the answer says {@code Connection: close}, and the
     * connection reads on briefly before it closes ({@link BodyReader#lingerThenComplete}).
     */
    void sendError(ApiError error) {
        setErrorHeaders(error);
        if (BodyReader.consumeArrived(request)) {
            response.write(true, ByteBuffer.wrap(error.body()), callback);
            return;
        }
        response.getHeaders().put(HttpHeader.CONNECTION, HttpHeaderValue.CLOSE.asString());
        response.write(true, ByteBuffer.wrap(error.body()),
                Callback.from(() -> BodyReader.lingerThenComplete(request, callback), callback::failed));
    }

    /** Answers {@code error} and closes the connection without touching the body (a read of it may be pending). */
    void sendErrorAndClose(ApiError error) {
        setErrorHeaders(error);
        response.getHeaders().put(HttpHeader.CONNECTION, HttpHeaderValue.CLOSE.asString());
        response.write(true, ByteBuffer.wrap(error.body()), callback);
    }

    private void setErrorHeaders(ApiError error) {
        if (error.retryAfterSeconds > 0) {
            response.getHeaders().put(HttpHeader.RETRY_AFTER, Integer.toString(error.retryAfterSeconds));
        }
        response.setStatus(error.status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
    }
}
