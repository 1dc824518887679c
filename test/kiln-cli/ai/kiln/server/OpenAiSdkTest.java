package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.cli.KilnCli;
import ai.kiln.api.SamplingParams;
import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.chat.completions.ChatCompletionTokenLogprob;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionChoice;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.models.Model;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.function.Executable;
import picocli.CommandLine;

/** The live server through OpenAI's official Java SDK, checked against the engine's own results. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OpenAiSdkTest {

    static final String MODEL = ServerHarness.MODEL;

    ServerHarness harness;
    OpenAIClient client;

    @BeforeAll
    void start() {
        harness = ServerHarness.start();
        client = OpenAIOkHttpClient.builder().baseUrl(harness.base + "/v1").apiKey("unused")
                .timeout(Duration.ofSeconds(60)).maxRetries(0).build();
    }

    @AfterAll
    void stop() throws Exception {
        client.close();
        harness.close();
    }

    GenerateResult engineGreedy(String prompt, int maxTokens) {
        return harness.engine.generate(GenerateRequest.of(prompt, SamplingParams.greedy(maxTokens)));
    }

    @Test
    void modelsListsTheServedModel() {
        List<Model> models = client.models().list().data();
        assertEquals(1, models.size());
        assertEquals(MODEL, models.get(0).id());
        assertEquals(MODEL, client.models().retrieve(MODEL).id());
        assertThrowsStatus(NotFoundException.class, () -> client.models().retrieve("other"));
    }

    @Test
    void greedyCompletionsEqualTheEngine() {
        for (Fixtures.Record record : ServerHarness.FIXTURE.records()) {
            Completion c = client.completions().create(CompletionCreateParams.builder().model(MODEL)
                    .prompt(record.prompt()).maxTokens(24).temperature(0.0).build());
            GenerateResult expected = engineGreedy(record.prompt(), 24);
            assertEquals(1, c.choices().size());
            CompletionChoice choice = c.choices().get(0);
            assertEquals(expected.text(), choice.text(), record.prompt());
            assertEquals(expected.finishReason().apiName(), choice.finishReason().asString());
            assertEquals(expected.promptTokenIds().length, c.usage().orElseThrow().promptTokens());
            assertEquals(expected.tokenIds().length, c.usage().orElseThrow().completionTokens());
            assertEquals(expected.promptTokenIds().length + expected.tokenIds().length,
                    c.usage().orElseThrow().totalTokens());
            assertEquals(MODEL, c.model());
            assertTrue(c.id().startsWith("cmpl-"));
        }
    }

    @Test
    void greedyTextEqualsKilnGenerateJson() {
        Fixtures.Record record = ServerHarness.FIXTURE.records().get(0);
        StringWriter out = new StringWriter();
        CommandLine cli = new CommandLine(new KilnCli());
        cli.setOut(new PrintWriter(out));
        int code = cli.execute("generate", "--model", ServerHarness.FIXTURE.dir().toString(), "--device", "cpu", "--prompt",
                record.prompt(), "--temperature", "0", "--max-tokens", "16", "--json");
        assertEquals(0, code, out.toString());
        JsonNode generated = ServerHarness.json(out.toString().trim());
        Completion c = client.completions().create(CompletionCreateParams.builder().model(MODEL)
                .prompt(record.prompt()).maxTokens(16).temperature(0.0).build());
        assertEquals(generated.get("text").asText(), c.choices().get(0).text());
        assertEquals(generated.get("finish_reason").asText(), c.choices().get(0).finishReason().asString());
        assertEquals(generated.get("token_ids").size(), c.usage().orElseThrow().completionTokens());
    }

    @Test
    void tokenIdPromptsAndPromptListsAndEcho() {
        Fixtures.Record record = ServerHarness.FIXTURE.records().get(0);
        List<Long> ids = new ArrayList<>();
        for (int id : record.promptTokenIds()) {
            ids.add((long) id);
        }
        GenerateResult expected = harness.engine.generate(GenerateRequest.ofTokens(record.promptTokenIds(),
                SamplingParams.greedy(12)));
        Completion byIds = client.completions().create(CompletionCreateParams.builder().model(MODEL)
                .promptOfArrayOfTokens(ids).maxTokens(12).temperature(0.0).build());
        assertEquals(expected.text(), byIds.choices().get(0).text());
        assertEquals(record.promptTokenIds().length, byIds.usage().orElseThrow().promptTokens());

        List<String> prompts = List.of(record.prompt(), "A second prompt");
        Completion two = client.completions().create(CompletionCreateParams.builder().model(MODEL)
                .promptOfArrayOfStrings(prompts).maxTokens(8).temperature(0.0).n(2).echo(true).build());
        assertEquals(4, two.choices().size());
        for (int p = 0; p < 2; p++) {
            String text = engineGreedy(prompts.get(p), 8).text();
            for (int j = 0; j < 2; j++) {
                CompletionChoice choice = two.choices().get(p * 2 + j);
                assertEquals(p * 2 + j, choice.index());
                assertEquals(prompts.get(p) + text, choice.text());
            }
        }
    }

    @Test
    void chatGreedyEqualsTheEngineAndStreamingEqualsNonStreaming() {
        List<Map<String, Object>> messages = List.of(Map.of("role", "system", "content", "You are terse."),
                Map.of("role", "user", "content", "Hello world"));
        GenerateResult expected = harness.engine.generate(GenerateRequest.ofChat(messages, SamplingParams.greedy(20)));
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model(MODEL)
                .addSystemMessage("You are terse.").addUserMessage("Hello world").maxCompletionTokens(20)
                .temperature(0.0).build();
        ChatCompletion chat = client.chat().completions().create(params);
        assertEquals(1, chat.choices().size());
        ChatCompletion.Choice choice = chat.choices().get(0);
        assertEquals(expected.text(), choice.message().content().orElse(""));
        assertEquals(expected.finishReason().apiName(), choice.finishReason().asString());
        assertEquals(expected.promptTokenIds().length, chat.usage().orElseThrow().promptTokens());
        assertEquals(expected.tokenIds().length, chat.usage().orElseThrow().completionTokens());
        assertTrue(chat.id().startsWith("chatcmpl-"));

        ChatCompletionCreateParams streamed = params.toBuilder()
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build();
        List<ChatCompletionChunk> chunks = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(streamed)) {
            stream.stream().forEach(chunks::add);
        }
        // The role first, then content, then the finish reason, then usage alone.
        ChatCompletionChunk first = chunks.get(0);
        assertEquals("assistant", first.choices().get(0).delta().role().orElseThrow().asString());
        StringBuilder text = new StringBuilder();
        int finishes = 0;
        for (int i = 0; i < chunks.size() - 1; i++) {
            ChatCompletionChunk chunk = chunks.get(i);
            assertEquals(chat.model(), chunk.model());
            assertEquals(1, chunk.choices().size());
            ChatCompletionChunk.Choice c = chunk.choices().get(0);
            text.append(c.delta().content().orElse(""));
            if (c.finishReason().isPresent()) {
                finishes++;
                assertEquals(chunks.size() - 2, i, "the finish reason comes last, before the usage chunk");
                assertEquals(expected.finishReason().apiName(), c.finishReason().get().asString());
            }
            if (i > 0) {
                assertTrue(c.delta().role().isEmpty());
            }
        }
        assertEquals(1, finishes);
        assertEquals(expected.text(), text.toString());
        ChatCompletionChunk last = chunks.get(chunks.size() - 1);
        assertTrue(last.choices().isEmpty());
        assertEquals(expected.tokenIds().length, last.usage().orElseThrow().completionTokens());
        assertEquals(expected.promptTokenIds().length, last.usage().orElseThrow().promptTokens());
    }

    @Test
    void nGreaterThanOneWithSeedsRepeatsAndDiffers() {
        CompletionCreateParams params = CompletionCreateParams.builder().model(MODEL).prompt("Once upon a time")
                .maxTokens(16).temperature(1.0).n(3).seed(1234).build();
        Completion a = client.completions().create(params);
        Completion b = client.completions().create(params);
        assertEquals(3, a.choices().size());
        Set<String> distinct = new HashSet<>();
        for (int i = 0; i < 3; i++) {
            assertEquals(i, a.choices().get(i).index());
            assertEquals(a.choices().get(i).text(), b.choices().get(i).text(), "same seed, same completion " + i);
            distinct.add(a.choices().get(i).text());
        }
        assertTrue(distinct.size() > 1, "n completions sampled at temperature 1 should differ: " + distinct);
        assertTrue(a.usage().orElseThrow().completionTokens() >= 3);
        // Another seed gives other text.
        Set<String> other = new HashSet<>();
        for (long seed = 1; seed <= 3; seed++) {
            other.add(client.completions().create(params.toBuilder().n(1).seed(seed).build()).choices().get(0).text());
        }
        assertTrue(other.size() > 1, "different seeds should give different samples: " + other);

        ChatCompletion chat = client.chat().completions().create(ChatCompletionCreateParams.builder().model(MODEL)
                .addUserMessage("Hello world").maxCompletionTokens(8).temperature(0.0).n(2).build());
        assertEquals(2, chat.choices().size());
        assertEquals(chat.choices().get(0).message().content(), chat.choices().get(1).message().content());
    }

    @Test
    void stopStringsCutTheText() {
        String prompt = ServerHarness.FIXTURE.records().get(0).prompt();
        String full = engineGreedy(prompt, 32).text();
        // A stop string from the middle of the greedy text: the completion ends just before it.
        String stop = null;
        for (int start = 2; start + 2 <= full.length() && stop == null; start++) {
            String candidate = full.substring(start, start + 2);
            if (!candidate.isBlank()) {
                stop = candidate;
            }
        }
        assertTrue(stop != null, "greedy text too short to pick a stop string: '" + full + "'");
        Completion c = client.completions().create(CompletionCreateParams.builder().model(MODEL).prompt(prompt)
                .maxTokens(32).temperature(0.0).stopOfStrings(List.of(stop, "\u0000never")).build());
        CompletionChoice choice = c.choices().get(0);
        assertEquals(full.substring(0, full.indexOf(stop)), choice.text());
        assertEquals("stop", choice.finishReason().asString());
        ChatCompletion chat = client.chat().completions().create(ChatCompletionCreateParams.builder().model(MODEL)
                .addUserMessage("Hello world").maxCompletionTokens(32).temperature(0.0).build());
        String chatText = chat.choices().get(0).message().content().orElse("");
        if (chatText.length() > 3) {
            String chatStop = chatText.substring(2, 3);
            ChatCompletion cut = client.chat().completions().create(ChatCompletionCreateParams.builder().model(MODEL)
                    .addUserMessage("Hello world").maxCompletionTokens(32).temperature(0.0).stop(chatStop).build());
            assertEquals(chatText.substring(0, chatText.indexOf(chatStop)),
                    cut.choices().get(0).message().content().orElse(""));
            assertEquals("stop", cut.choices().get(0).finishReason().asString());
        }
    }

    @Test
    void logprobsOnCompletionsAndChat() {
        String prompt = ServerHarness.FIXTURE.records().get(0).prompt();
        Completion c = client.completions().create(CompletionCreateParams.builder().model(MODEL).prompt(prompt)
                .maxTokens(8).temperature(0.0).logprobs(3).build());
        CompletionChoice.Logprobs lp = c.choices().get(0).logprobs().orElseThrow();
        long generated = c.usage().orElseThrow().completionTokens();
        List<String> tokens = lp.tokens().orElseThrow();
        List<Double> values = lp.tokenLogprobs().orElseThrow();
        assertEquals(generated, tokens.size());
        assertEquals(generated, values.size());
        assertEquals(generated, lp.textOffset().orElseThrow().size());
        List<CompletionChoice.Logprobs.TopLogprob> top = lp.topLogprobs().orElseThrow();
        for (int i = 0; i < tokens.size(); i++) {
            assertTrue(values.get(i) <= 0);
            Map<String, JsonValue> alternatives = top.get(i)._allProperties();
            assertTrue(alternatives.size() >= 1 && alternatives.size() <= 4, alternatives.toString());
            // Greedy: the chosen token is the most likely one.
            double best = alternatives.values().stream().mapToDouble(v -> ((Number) v.asNumber().orElseThrow()).doubleValue())
                    .max().orElseThrow();
            assertEquals(best, values.get(i), 1e-5);
        }

        ChatCompletion chat = client.chat().completions().create(ChatCompletionCreateParams.builder().model(MODEL)
                .addUserMessage("Hello world").maxCompletionTokens(6).temperature(0.0).logprobs(true).topLogprobs(2)
                .build());
        List<ChatCompletionTokenLogprob> content = chat.choices().get(0).logprobs().orElseThrow().content()
                .orElseThrow();
        assertEquals(chat.usage().orElseThrow().completionTokens(), content.size());
        for (ChatCompletionTokenLogprob t : content) {
            assertEquals(2, t.topLogprobs().size());
            assertTrue(t.logprob() <= 0);
            assertEquals(t.topLogprobs().get(0).logprob(), t.logprob(), 1e-5);
            assertFalse(t.bytes().orElseThrow().isEmpty() && !t.token().isEmpty());
        }
        ChatCompletion plain = client.chat().completions().create(ChatCompletionCreateParams.builder().model(MODEL)
                .addUserMessage("Hello world").maxCompletionTokens(6).temperature(0.0).build());
        assertTrue(plain.choices().get(0).logprobs().isEmpty());
    }

    @Test
    void sdkSurfacesErrors() {
        assertThrowsStatus(BadRequestException.class, () -> client.completions().create(CompletionCreateParams
                .builder().model(MODEL).prompt("hi").maxTokens(-3).build()));
        assertThrowsStatus(NotFoundException.class, () -> client.completions().create(CompletionCreateParams
                .builder().model("nope").prompt("hi").build()));
        BadRequestException e = org.junit.jupiter.api.Assertions.assertThrows(BadRequestException.class,
                () -> client.completions().create(CompletionCreateParams.builder().model(MODEL).prompt("hi")
                        .temperature(-1.0).build()));
        assertNotEquals(-1, e.getMessage().indexOf("temperature"), e.getMessage());
    }

    static void assertThrowsStatus(Class<? extends Throwable> type, Executable call) {
        org.junit.jupiter.api.Assertions.assertThrows(type, call);
    }
}
