package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.SamplingParams;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * SamplingJson, the one reader of sampling fields: the request parsers take their parameters from
 * it, its public form refuses with the server's messages, absent fields keep the defaults given,
 * and the endpoints differ only in max tokens and log-probabilities.
 */
class SamplingJsonTest {

    static ObjectNode body(String json) {
        return (ObjectNode) ServerHarness.json(json);
    }

    static JsonNode completion(String sampling) {
        return body("{\"model\": \"m\", \"prompt\": \"p\"" + (sampling.isEmpty() ? "" : ", " + sampling) + "}");
    }

    static JsonNode chat(String sampling) {
        return body("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"p\"}]"
                + (sampling.isEmpty() ? "" : ", " + sampling) + "}");
    }

    static SamplingParams read(JsonNode body, SamplingJson.Endpoint endpoint) {
        return SamplingJson.read(body, endpoint, endpoint.defaults());
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "\"max_tokens\": 5, \"temperature\": 0.5, \"top_p\": 0.9, \"top_k\": 4, \"min_p\": 0.05",
            "\"n\": 3, \"best_of\": 3, \"seed\": 7, \"stop\": [\"a\", \"b\"], \"logprobs\": 2",
            "\"stop\": \"x\", \"seed\": 3.0, \"ignore_eos\": true, \"min_tokens\": 2, \"stop_token_ids\": [1, 2]",
            "\"repetition_penalty\": 1.2, \"presence_penalty\": -1, \"frequency_penalty\": 0.5",
            "\"skip_special_tokens\": false, \"include_stop_str_in_output\": true, \"max_tokens\": null",
            "\"logprobs\": 0, \"temperature\": 0"})
    void theCompletionsParserTakesItsParametersFromTheReader(String sampling) {
        JsonNode body = completion(sampling);
        SamplingParams params = CompletionRequest.parse(body).params();
        assertEquals(read(body, SamplingJson.Endpoint.COMPLETIONS), params);
        assertEquals(params.logprobs(), CompletionRequest.parse(body).logprobs());
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "\"max_completion_tokens\": 5, \"max_tokens\": 9, \"temperature\": 0.5",
            "\"max_tokens\": 9, \"n\": 2, \"logprobs\": true, \"top_logprobs\": 3",
            "\"logprobs\": true", "\"logprobs\": false, \"top_logprobs\": 0", "\"stop\": [\"x\"], \"seed\": 4"})
    void theChatParserTakesItsParametersFromTheReader(String sampling) {
        JsonNode body = chat(sampling);
        ChatRequest request = ChatRequest.parse(body);
        assertEquals(read(body, SamplingJson.Endpoint.CHAT), request.params());
        assertEquals(request.params().logprobs() != null, request.logprobs());
        assertEquals(request.logprobs() ? request.params().logprobs() : 0, request.topLogprobs());
    }

    @Test
    void theEndpointsDifferInMaxTokensAndLogprobs() {
        assertEquals(16, SamplingJson.Endpoint.COMPLETIONS.defaults().maxTokens());
        assertNull(SamplingJson.Endpoint.CHAT.defaults().maxTokens());
        assertEquals(SamplingParams.builder().build(), SamplingJson.Endpoint.COMPLETIONS.defaults());
        // Chat: max_completion_tokens wins over max_tokens; logprobs is a switch, top_logprobs the count.
        assertEquals(5, read(chat("\"max_completion_tokens\": 5, \"max_tokens\": 9"), SamplingJson.Endpoint.CHAT)
                .maxTokens());
        assertEquals(9, read(chat("\"max_tokens\": 9"), SamplingJson.Endpoint.CHAT).maxTokens());
        assertEquals(3, read(chat("\"logprobs\": true, \"top_logprobs\": 3"), SamplingJson.Endpoint.CHAT).logprobs());
        assertEquals(0, read(chat("\"logprobs\": true"), SamplingJson.Endpoint.CHAT).logprobs());
        assertEquals("'logprobs' must be a boolean, got an integer (2).",
                refusal(chat("\"logprobs\": 2"), SamplingJson.Endpoint.CHAT));
        assertEquals("'top_logprobs' needs 'logprobs' set to true.",
                refusal(chat("\"top_logprobs\": 2"), SamplingJson.Endpoint.CHAT));
        // Completions: logprobs is the count; max_completion_tokens and top_logprobs are not its fields.
        assertEquals(2, read(completion("\"logprobs\": 2"), SamplingJson.Endpoint.COMPLETIONS).logprobs());
        assertEquals("'logprobs' must be an integer, got a boolean.",
                refusal(completion("\"logprobs\": true"), SamplingJson.Endpoint.COMPLETIONS));
        assertEquals(16, read(completion("\"max_completion_tokens\": 5"), SamplingJson.Endpoint.COMPLETIONS)
                .maxTokens());
        assertEquals("'best_of' other than n is not supported, got best_of=2.",
                refusal(completion("\"best_of\": 2"), SamplingJson.Endpoint.COMPLETIONS));
        Set<String> common = new TreeSet<>(SamplingJson.Endpoint.COMPLETIONS.fields());
        common.retainAll(SamplingJson.Endpoint.CHAT.fields());
        Set<String> completionsOnly = new TreeSet<>(SamplingJson.Endpoint.COMPLETIONS.fields());
        completionsOnly.removeAll(common);
        Set<String> chatOnly = new TreeSet<>(SamplingJson.Endpoint.CHAT.fields());
        chatOnly.removeAll(common);
        assertEquals(Set.of("best_of"), completionsOnly);
        assertEquals(Set.of("max_completion_tokens", "top_logprobs"), chatOnly);
        assertTrue(common.containsAll(List.of("max_tokens", "logprobs", "temperature", "stop_token_ids")));
    }

    @Test
    void absentAndNullFieldsKeepTheDefaultsGiven() {
        SamplingParams defaults = SamplingParams.builder().maxTokens(7).temperature(0.3).topP(0.8).topK(5).minP(0.1)
                .seed(11L).stop("end").ignoreEos(true).logprobs(1).build();
        SamplingJson.Endpoint completions = SamplingJson.Endpoint.COMPLETIONS;
        assertEquals(defaults, SamplingJson.read(body("{}"), completions, defaults));
        assertEquals(defaults, SamplingJson.read(body("{\"max_tokens\": null, \"temperature\": null, \"stop\": null,"
                + " \"seed\": null, \"logprobs\": null}"), completions, defaults));
        assertEquals(defaults.toBuilder().temperature(0).stop("x", "y").build(),
                SamplingJson.read(body("{\"temperature\": 0, \"stop\": [\"x\", \"y\"]}"), completions, defaults));
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"temperature\": \"hot\"", "\"temperature\": 2.5", "\"top_p\": 0", "\"top_k\": -5",
            "\"max_tokens\": 0", "\"max_tokens\": 2.5", "\"n\": 0", "\"n\": 200", "\"seed\": \"x\"", "\"seed\": 1.5",
            "\"stop\": 3", "\"stop\": [\"\"]", "\"stop\": [1]", "\"ignore_eos\": \"yes\"", "\"min_p\": 2",
            "\"min_tokens\": 9, \"max_tokens\": 3", "\"stop_token_ids\": [-1]", "\"stop_token_ids\": 4",
            "\"logprobs\": 21", "\"presence_penalty\": 3", "\"repetition_penalty\": 0"})
    void aRefusalHasTheServersMessage(String sampling) {
        JsonNode body = completion(sampling);
        ApiError server = assertThrows(ApiError.class, () -> CompletionRequest.parse(body));
        assertEquals(400, server.status);
        assertEquals(server.getMessage(), refusal(body, SamplingJson.Endpoint.COMPLETIONS));
    }

    static String refusal(JsonNode body, SamplingJson.Endpoint endpoint) {
        return assertThrows(IllegalArgumentException.class, () -> read(body, endpoint)).getMessage();
    }
}
