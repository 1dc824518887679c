package ai.kiln.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
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

    void sendError(ApiError error) {
        discardUnreadBody(request);
        if (error.retryAfterSeconds > 0) {
            response.getHeaders().put(HttpHeader.RETRY_AFTER, Integer.toString(error.retryAfterSeconds));
        }
        send(error.status, "application/json", errorBody(error.status, error.getMessage(), error.type, error.param,
                error.code));
    }

    /** The most of an unread request body that is read and dropped before an error is answered. */
    static final long DISCARD_LIMIT_BYTES = 64L << 20;

    /**
     * Reads and drops what is left of the request body (up to {@link #DISCARD_LIMIT_BYTES}); a no-op
     * once the body has been read. NOTE: an error answered before the body is read (401, 404, 405,
     * 413, 503, ...) would otherwise leave bytes unread: the server then closes the connection after
     * a response already sent as keep-alive, and the client's next request on it finds it dead, or
     * the kernel resets it and the response itself is lost.
     */
    static void discardUnreadBody(Request request) {
        discard(Content.Source.asInputStream(request));
    }

    /** Reads and drops the rest of a body stream, up to {@link #DISCARD_LIMIT_BYTES}. */
    static void discard(InputStream in) {
        try {
            byte[] sink = new byte[64 << 10];
            long read = 0;
            int n;
            while (read < DISCARD_LIMIT_BYTES && (n = in.read(sink, 0, sink.length)) >= 0) {
                read += n;
            }
        } catch (IOException | RuntimeException e) {
            // The body could not be read (the client went away): nothing is left to protect.
        }
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
