package ai.kiln.server;

import ai.kiln.api.SamplingParams;
import com.fasterxml.jackson.databind.JsonNode;

/** The server's own parsing of a completions body, for tests outside this package (the parsers are package-private). */
public final class ServerRequestParsing {

    private ServerRequestParsing() {
    }

    /** The sampling parameters {@code POST /v1/completions} would run {@code body} with. */
    public static SamplingParams completionParams(JsonNode body) {
        return CompletionRequest.parse(body).params();
    }

    /** The message of the 400 that {@code POST /v1/completions} would answer {@code body} with; null if none. */
    public static String completionRefusal(JsonNode body) {
        try {
            CompletionRequest.parse(body);
            return null;
        } catch (ApiError e) {
            return e.getMessage();
        }
    }
}
