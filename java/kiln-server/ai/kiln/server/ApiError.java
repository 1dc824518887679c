package ai.kiln.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;

/**
 * A request the server answers with an OpenAI-style error body:
 * {@code {"error": {"message", "type", "param", "code"}}} and an HTTP status.
 */
final class ApiError extends RuntimeException {

    final int status;
    final String type;
    final String param;
    final String code;
    /** Seconds for a Retry-After header; 0: none. */
    final int retryAfterSeconds;

    ApiError(int status, String type, String message, String param, String code, int retryAfterSeconds) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    /** 400: the body is not what the endpoint accepts; {@code param} names the field, or null. */
    static ApiError invalid(String message, String param) {
        return new ApiError(400, "invalid_request_error", message, param, null, 0);
    }

    static ApiError invalid(String message, String param, String code) {
        return new ApiError(400, "invalid_request_error", message, param, code, 0);
    }

    static ApiError unauthorized() {
        return new ApiError(401, "invalid_request_error",
                "Incorrect or missing API key: send it as 'Authorization: Bearer <key>'.", null, "invalid_api_key", 0);
    }

    static ApiError modelNotFound(String model, String served) {
        return new ApiError(404, "invalid_request_error",
                "The model '" + model + "' does not exist; this server serves '" + served + "'.", "model",
                "model_not_found", 0);
    }

    static ApiError unknownRoute(String method, String path) {
        return new ApiError(404, "invalid_request_error", "Unknown route: " + method + " " + path + ".", null,
                "unknown_url", 0);
    }

    static ApiError methodNotAllowed(String method, String path, String allowed) {
        return new ApiError(405, "invalid_request_error",
                "Method " + method + " is not allowed on " + path + "; use " + allowed + ".", null,
                "method_not_allowed", 0);
    }

    static ApiError tooLarge(long limit) {
        return new ApiError(413, "invalid_request_error",
                "The request body is larger than the server's limit of " + limit + " bytes.", null,
                "request_too_large", 0);
    }

    /** 408: the request did not arrive in time (its body too slow, or not complete within the body timeout). */
    static ApiError requestTimeout(String message) {
        return new ApiError(408, "invalid_request_error", message, null, "request_timeout", 0);
    }

    static ApiError overloaded(int waiting, int retryAfterSeconds) {
        return new ApiError(429, "rate_limit_error",
                "The server is at capacity (" + waiting + " requests waiting); retry later.", null,
                "too_many_requests", retryAfterSeconds);
    }

    /** 501: a method or transfer coding the server does not implement. */
    static ApiError notImplemented(String message, String code) {
        return new ApiError(501, "invalid_request_error", message, null, code, 0);
    }

    /** 503 from a server not (or no longer) serving: still loading, draining or stopped. */
    static ApiError notReady(KilnServer.State state) {
        String message = switch (state) {
            case LOADING -> "The model is still loading; retry shortly.";
            case DRAINING -> "The server is shutting down and takes no new requests.";
            case STOPPED -> "The server has stopped.";
            case READY -> "ready";
        };
        return unavailable(message, state.name().toLowerCase());
    }

    static ApiError unavailable(String message, String code) {
        return new ApiError(503, "service_unavailable", message, null, code, 0);
    }

    static ApiError internal(String message) {
        return new ApiError(500, "server_error", message, null, "internal_error", 0);
    }

    /** This error's response body. */
    byte[] body() {
        return body(status, getMessage(), type, param, code);
    }

    /** OpenAI's error shape as bytes: {@code {"error": {"message", "type", "param", "code"}}}. */
    static byte[] body(int status, String message, String type, String param, String code) {
        try {
            return Exchange.JSON.writeValueAsBytes(json(message, type, param, code));
        } catch (JsonProcessingException e) {
            return ("{\"error\":{\"message\":\"HTTP " + status + "\",\"type\":\"server_error\",\"param\":null,"
                    + "\"code\":null}}").getBytes(StandardCharsets.UTF_8);
        }
    }

    /** OpenAI's error shape: {@code {"error": {"message", "type", "param", "code"}}}. */
    static ObjectNode json(String message, String type, String param, String code) {
        ObjectNode root = Exchange.JSON.createObjectNode();
        ObjectNode error = root.putObject("error");
        error.put("message", message);
        error.put("type", type);
        error.put("param", param);
        error.put("code", code);
        return root;
    }
}
