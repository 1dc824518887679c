package ai.kiln.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
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
    /** Prompt and generated token counts, for the request log; set by the generation endpoints. */
    volatile int promptTokens = -1;
    volatile int completionTokens = -1;

    Exchange(Request request, Response response, Callback callback, String requestId) {
        this.request = request;
        this.response = response;
        this.callback = callback;
        this.requestId = requestId;
        this.arrivalNanos = request.getBeginNanoTime();
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
            response.write(true, ByteBuffer.wrap(errorBody(error)), callback);
            return;
        }
        response.getHeaders().put(HttpHeader.CONNECTION, HttpHeaderValue.CLOSE.asString());
        response.write(true, ByteBuffer.wrap(errorBody(error)),
                Callback.from(() -> BodyReader.lingerThenComplete(request, callback), callback::failed));
    }

    /** Answers {@code error} and closes the connection without touching the body (a read of it may be pending). */
    void sendErrorAndClose(ApiError error) {
        setErrorHeaders(error);
        response.getHeaders().put(HttpHeader.CONNECTION, HttpHeaderValue.CLOSE.asString());
        response.write(true, ByteBuffer.wrap(errorBody(error)), callback);
    }

    private void setErrorHeaders(ApiError error) {
        if (error.retryAfterSeconds > 0) {
            response.getHeaders().put(HttpHeader.RETRY_AFTER, Integer.toString(error.retryAfterSeconds));
        }
        response.setStatus(error.status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
    }

    private static byte[] errorBody(ApiError error) {
        return errorBody(error.status, error.getMessage(), error.type, error.param, error.code);
    }

    /** OpenAI's error shape: {@code {"error": {"message", "type", "param", "code"}}}. */
    static byte[] errorBody(int status, String message, String type, String param, String code) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode error = root.putObject("error");
        error.put("message", message);
        error.put("type", type);
        error.put("param", param);
        error.put("code", code);
        try {
            return JSON.writeValueAsBytes(root);
        } catch (JsonProcessingException e) {
            return ("{\"error\":{\"message\":\"HTTP " + status + "\",\"type\":\"server_error\",\"param\":null,"
                    + "\"code\":null}}").getBytes(StandardCharsets.UTF_8);
        }
    }
}
