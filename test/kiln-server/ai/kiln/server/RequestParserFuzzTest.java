package ai.kiln.server;

import ai.kiln.fuzz.FuzzBudget;
import ai.kiln.fuzz.Fuzzing;
import ai.kiln.fuzz.Mutations;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.Random;
import java.util.function.Predicate;
import java.util.stream.Stream;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.lifecycle.AddLifecycleHook;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Completion and chat request bodies, as bytes, through the path the server reads them by
 * (RequestJson, then CompletionRequest or ChatRequest): bodies assembled from the endpoints' fields
 * with sensible, wrong-typed and extreme values, and valid bodies after byte edits (cuts, invalid
 * UTF-8, trailing data). Each must parse or be refused with a 4xx {@link ApiError} whose message
 * says why; anything else would reach the client as a 500.
 *
 * <p>Here rather than in ai.kiln.fuzz because the parsers are package-private.
 */
@AddLifecycleHook(FuzzBudget.class)
class RequestParserFuzzTest {

    static final String TARGET = "request";
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    /** A client error: what the server answers with its error JSON and a 4xx status. */
    private static final Predicate<Throwable> CLIENT_ERROR = e -> e instanceof ApiError error && error.status >= 400
            && error.status < 500 && error.getMessage() != null && !error.getMessage().isBlank();

    private static final String[] COMPLETION_FIELDS = {
            "prompt", "n", "max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty",
            "presence_penalty", "frequency_penalty", "seed", "stop", "stream", "stream_options", "logprobs", "echo",
            "best_of", "suffix", "logit_bias", "stop_token_ids", "ignore_eos", "min_tokens", "user",
            "skip_special_tokens", "include_stop_str_in_output"};
    private static final String[] CHAT_FIELDS = {
            "messages", "n", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "seed", "stop",
            "stream", "stream_options", "logprobs", "top_logprobs", "tools", "tool_choice", "functions",
            "response_format", "logit_bias", "user", "min_tokens", "stop_token_ids"};

    @Property
    void generatedBodyParsesOrIsAClientError(@ForAll long seed, @ForAll boolean chat) {
        Random random = new Random(seed);
        check(chat, Mutations.write(body(chat, random)));
    }

    @Property
    void mutatedBodyParsesOrIsAClientError(@ForAll long seed, @ForAll boolean chat,
            @ForAll @IntRange(min = 1, max = 6) int edits) {
        Random random = new Random(seed);
        byte[] body = Mutations.write(body(chat, random));
        check(chat, random.nextBoolean() ? Mutations.mutateBytes(body, edits, 1 << 16, random)
                : Mutations.mutateJson(Mutations.parse(body), edits, random));
    }

    /** Corpus files name their endpoint: chat-*.bin for chat completions, any other for completions. */
    @TestFactory
    Stream<DynamicTest> pastFindingsStillParseOrAreClientErrors() {
        return Fuzzing.corpus(TARGET).map(file -> DynamicTest.dynamicTest(file.getFileName().toString(),
                () -> check(isChat(file), Fuzzing.read(file))));
    }

    private static boolean isChat(Path file) {
        return file.getFileName().toString().startsWith("chat-");
    }

    private static void check(boolean chat, byte[] body) {
        Fuzzing.check(TARGET, body, () -> {
            JsonNode json = RequestJson.parse(body);
            return chat ? ChatRequest.parse(json) : CompletionRequest.parse(json);
        }, CLIENT_ERROR);
    }

    private static ObjectNode body(boolean chat, Random random) {
        ObjectNode body = NODES.objectNode();
        body.put("model", "kiln");
        if (chat) {
            body.set("messages", messages(random));
        } else {
            body.set("prompt", prompt(random));
        }
        String[] fields = chat ? CHAT_FIELDS : COMPLETION_FIELDS;
        for (int i = random.nextInt(6); i > 0; i--) {
            String field = fields[random.nextInt(fields.length)];
            body.set(field, random.nextInt(3) == 0 ? Mutations.randomValue(random, 2) : sensible(field, random));
        }
        if (random.nextInt(10) == 0) {
            body.remove(random.nextBoolean() ? "model" : chat ? "messages" : "prompt");
        }
        return body;
    }

    private static JsonNode prompt(Random random) {
        ArrayNode array = NODES.arrayNode();
        switch (random.nextInt(5)) {
            case 0 -> {
                return NODES.textNode(Mutations.randomString(random, 40));
            }
            case 1 -> {
                for (int i = random.nextInt(4); i >= 0; i--) {
                    array.add(Mutations.randomString(random, 10));
                }
            }
            case 2 -> {
                for (int i = random.nextInt(8); i >= 0; i--) {
                    array.add(random.nextInt(8) == 0 ? Mutations.extremeNumber(random) : NODES.numberNode(random.nextInt(600)));
                }
            }
            case 3 -> {
                for (int i = random.nextInt(3); i >= 0; i--) {
                    ArrayNode ids = array.addArray();
                    for (int j = random.nextInt(4); j >= 0; j--) {
                        ids.add(random.nextInt(600));
                    }
                }
            }
            default -> {
                return Mutations.randomValue(random, 2);
            }
        }
        return array;
    }

    private static JsonNode messages(Random random) {
        ArrayNode messages = NODES.arrayNode();
        String[] roles = {"system", "developer", "user", "assistant", "tool", "bot", ""};
        for (int i = random.nextInt(4); i >= 0; i--) {
            ObjectNode message = messages.addObject();
            message.put("role", roles[random.nextInt(roles.length)]);
            switch (random.nextInt(5)) {
                case 0 -> {
                    ArrayNode parts = message.putArray("content");
                    for (int p = random.nextInt(3); p >= 0; p--) {
                        ObjectNode part = parts.addObject();
                        part.put("type", random.nextInt(4) == 0 ? "image_url" : "text");
                        part.set("text", random.nextInt(5) == 0 ? Mutations.randomValue(random, 1)
                                : NODES.textNode(Mutations.randomString(random, 12)));
                    }
                }
                case 1 -> message.set("content", Mutations.randomValue(random, 2));
                default -> message.put("content", Mutations.randomString(random, 20));
            }
            if (random.nextInt(6) == 0) {
                message.set("name", Mutations.randomValue(random, 1));
            }
        }
        return random.nextInt(12) == 0 ? Mutations.randomValue(random, 2) : messages;
    }

    /** A value of the type the field takes, at or near the edges of its range. */
    private static JsonNode sensible(String field, Random random) {
        return switch (field) {
            case "temperature", "top_p", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty" ->
                    NODES.numberNode(random.nextInt(5) == 0 ? Mutations.extremeNumber(random).asDouble()
                            : random.nextDouble() * 3 - 0.5);
            case "stream", "echo", "ignore_eos", "logprobs", "skip_special_tokens", "include_stop_str_in_output" ->
                    field.equals("logprobs") && random.nextBoolean() ? NODES.numberNode(random.nextInt(30) - 2)
                            : NODES.booleanNode(random.nextBoolean());
            case "stop" -> random.nextBoolean() ? NODES.textNode(Mutations.randomString(random, 4))
                    : NODES.arrayNode().add("").add("\n").add(Mutations.randomString(random, 3));
            case "stream_options" -> NODES.objectNode().set("include_usage", NODES.booleanNode(random.nextBoolean()));
            case "stop_token_ids" -> NODES.arrayNode().add(random.nextInt(600)).add(Mutations.extremeNumber(random));
            case "response_format" -> NODES.objectNode().put("type", random.nextBoolean() ? "text" : "json_object");
            case "tools" -> NODES.arrayNode();
            case "tool_choice" -> NODES.textNode(random.nextBoolean() ? "none" : "auto");
            case "logit_bias" -> NODES.objectNode();
            case "user", "suffix" -> NODES.textNode(Mutations.randomString(random, 8));
            default -> random.nextInt(4) == 0 ? Mutations.extremeNumber(random) : NODES.numberNode(random.nextInt(40) - 4);
        };
    }
}
