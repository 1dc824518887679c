package ai.kiln.springai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineMetrics;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.SamplingParams;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.Map;
import java.util.stream.Collectors;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.messages.SystemMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.metadata.Usage;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.tool.annotation.Tool;
import org.springframework.ai.tool.annotation.ToolParam;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The starter end to end: a Boot application whose only configuration is properties gets a
 * Kiln engine on the fixture model and a {@link ChatModel} on it, with the default options the
 * properties give (greedy, 12 tokens), and every reply is checked against the engine itself.
 */
@SpringBootTest(classes = KilnChatModelSpringBootTest.TestApplication.class, properties = {
        "spring.ai.kiln.device=cpu",
        "spring.ai.kiln.kv-cache-bytes=16MB",
        "spring.ai.kiln.chat.temperature=0",
        "spring.ai.kiln.chat.max-tokens=" + KilnChatModelSpringBootTest.DEFAULT_MAX_TOKENS})
class KilnChatModelSpringBootTest {

    static final int DEFAULT_MAX_TOKENS = 12;

    /**
     * Greedy decoding of this conversation on the fixture runs well past 450 tokens without an
     * end-of-sequence token, so a reply to it ends by length wherever max tokens puts the end.
     */
    private static final String SYSTEM = "You are terse.";
    private static final String USER = "Hello";
    private static final List<Map<String, Object>> ENGINE_MESSAGES = List.of(
            Map.of("role", "system", "content", SYSTEM), Map.of("role", "user", "content", USER));

    @SpringBootConfiguration
    @EnableAutoConfiguration
    static class TestApplication {
    }

    @DynamicPropertySource
    static void modelDirectory(DynamicPropertyRegistry registry) {
        registry.add("spring.ai.kiln.model", () -> TestModels.llama3().toString());
    }

    @Autowired
    ChatModel chatModel;

    @Autowired
    Engine engine;

    private static Prompt prompt() {
        return new Prompt(List.of(new SystemMessage(SYSTEM), new UserMessage(USER)));
    }

    private static Prompt prompt(KilnChatOptions options) {
        return new Prompt(List.of(new SystemMessage(SYSTEM), new UserMessage(USER)), options);
    }

    private GenerateResult engineGenerate(SamplingParams params) {
        return engine.generate(GenerateRequest.ofChat(ENGINE_MESSAGES, params));
    }

    private static String text(ChatResponse response) {
        return response.getResult().getOutput().getText();
    }

    @Test
    void theContextHoldsAKilnChatModelOnTheEngineBean() {
        assertThat(chatModel).isInstanceOf(KilnChatModel.class);
        KilnChatModel kiln = (KilnChatModel) chatModel;
        assertThat(kiln.engine()).isSameAs(engine);
        assertThat(kiln.modelName()).isEqualTo("llama3-gqa");
        assertThat(kiln.getOptions().getTemperature()).isEqualTo(0.0);
        assertThat(kiln.getOptions().getMaxTokens()).isEqualTo(DEFAULT_MAX_TOKENS);
        assertThat(engine.options().device()).isEqualTo("cpu");
        assertThat(engine.options().kvCacheBytes()).isEqualTo(16L << 20);
    }

    @Test
    void callReturnsWhatTheEngineGeneratesForTheSameMessages() {
        GenerateResult expected = engineGenerate(SamplingParams.greedy(DEFAULT_MAX_TOKENS));

        ChatResponse response = chatModel.call(prompt());

        assertThat(text(response)).isNotEmpty().isEqualTo(expected.text());
        assertThat(response.getResult().getMetadata().getFinishReason()).isEqualTo(expected.finishReason().name());
        assertThat(response.getMetadata().getModel()).isEqualTo("llama3-gqa");
        assertThat(response.getMetadata().getId()).startsWith("req-");
        Usage usage = response.getMetadata().getUsage();
        assertThat(usage.getPromptTokens()).isEqualTo(expected.promptTokenIds().length);
        assertThat(usage.getCompletionTokens()).isEqualTo(expected.numGeneratedTokens());
        assertThat(usage.getTotalTokens()).isEqualTo(expected.promptTokenIds().length + expected.numGeneratedTokens());
    }

    @Test
    void defaultOptionsFromPropertiesApply() {
        ChatResponse response = chatModel.call(prompt());

        // max-tokens=12 ends the reply (the conversation runs on for hundreds of tokens) ...
        assertThat(response.getResult().getMetadata().getFinishReason()).isEqualTo("LENGTH");
        assertThat(response.getMetadata().getUsage().getCompletionTokens()).isEqualTo(DEFAULT_MAX_TOKENS);
        // ... and temperature=0 makes it greedy: the same reply every time.
        assertThat(text(chatModel.call(prompt()))).isEqualTo(text(response));
    }

    @Test
    void promptOptionsOverrideTheDefaultsFieldByField() {
        ChatResponse shorter = chatModel.call(prompt(KilnChatOptions.builder().maxTokens(3).build()));
        assertThat(text(shorter)).isEqualTo(engineGenerate(SamplingParams.greedy(3)).text());
        assertThat(shorter.getMetadata().getUsage().getCompletionTokens()).isEqualTo(3);

        // Temperature and seed from the prompt; max tokens still from the properties.
        ChatResponse sampled = chatModel.call(prompt(KilnChatOptions.builder().temperature(1.0).seed(7L).build()));
        GenerateResult expected = engineGenerate(
                SamplingParams.builder().temperature(1.0).seed(7L).maxTokens(DEFAULT_MAX_TOKENS).build());
        assertThat(text(sampled)).isEqualTo(expected.text()).isNotEqualTo(text(chatModel.call(prompt())));
        assertThat(sampled.getMetadata().getUsage().getCompletionTokens()).isEqualTo(expected.numGeneratedTokens());
    }

    @Test
    void streamedDeltasAddUpToTheCalledReply() {
        ChatResponse called = chatModel.call(prompt());

        List<ChatResponse> streamed = chatModel.stream(prompt()).collectList().block(Duration.ofSeconds(60));

        assertThat(streamed).hasSizeGreaterThan(1);
        assertThat(streamed.stream().map(KilnChatModelSpringBootTest::text).collect(Collectors.joining()))
                .isEqualTo(text(called));
        ChatResponse last = streamed.get(streamed.size() - 1);
        assertThat(last.getResult().getMetadata().getFinishReason()).isEqualTo("LENGTH");
        assertThat(last.getMetadata().getUsage().getPromptTokens())
                .isEqualTo(called.getMetadata().getUsage().getPromptTokens());
        assertThat(last.getMetadata().getUsage().getCompletionTokens()).isEqualTo(DEFAULT_MAX_TOKENS);
        for (ChatResponse delta : streamed.subList(0, streamed.size() - 1)) {
            assertThat(delta.getResult().getMetadata().getFinishReason()).isNull();
            assertThat(delta.getMetadata().getId()).isEqualTo(last.getMetadata().getId());
        }
    }

    @Test
    void cancellingTheStreamCancelsTheEngineRequest() {
        int maxTokens = 450;
        KilnChatOptions longReply = KilnChatOptions.builder().maxTokens(maxTokens).build();
        // The precondition that makes the check below mean something: left alone, the request
        // generates all 450 tokens.
        ChatResponse full = chatModel.call(prompt(longReply));
        assertThat(full.getMetadata().getUsage().getCompletionTokens()).isEqualTo(maxTokens);

        EngineMetrics before = engine.metrics();
        List<ChatResponse> firstTwo = chatModel.stream(prompt(longReply)).take(2).collectList()
                .block(Duration.ofSeconds(60));

        assertThat(firstTwo).hasSize(2);
        Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> {
            EngineMetrics now = engine.metrics();
            return now.requestsFinished() == before.requestsFinished() + 1 && now.numRunning() == 0
                    && now.numWaiting() == 0;
        });
        long generated = engine.metrics().generationTokens() - before.generationTokens();
        assertThat(generated).isGreaterThanOrEqualTo(2).isLessThan(maxTokens);
    }

    @Test
    void chatClientCallsAndStreamsOverTheModel() {
        ChatClient client = ChatClient.create(chatModel);
        String expected = text(chatModel.call(prompt()));

        assertThat(client.prompt().system(SYSTEM).user(USER).call().content()).isEqualTo(expected);
        assertThat(String.join("", client.prompt().system(SYSTEM).user(USER).stream().content().collectList()
                .block(Duration.ofSeconds(60)))).isEqualTo(expected);
        // The client combines its options with the model's defaults (greedy from the properties).
        ChatResponse shorter = client.prompt().system(SYSTEM).user(USER).options(KilnChatOptions.builder().maxTokens(3))
                .call().chatResponse();
        assertThat(text(shorter)).isEqualTo(engineGenerate(SamplingParams.greedy(3)).text());
        assertThat(shorter.getMetadata().getUsage().getCompletionTokens()).isEqualTo(3);
    }

    enum Unit {
        CELSIUS, FAHRENHEIT
    }

    /** A tool whose arguments form a finite language, so that random weights finish the call. */
    static class ForecastTools {
        final List<String> calls = new CopyOnWriteArrayList<>();

        // returnDirect: under "required" every reply is a call, so the client returns after the first.
        @Tool(description = "The forecast in the unit asked for", returnDirect = true)
        String forecast(@ToolParam(description = "temperature unit") Unit unit,
                @ToolParam(description = "hour by hour") boolean hourly) {
            calls.add(unit + " " + hourly);
            return "sunny";
        }
    }

    @Test
    void aToolGivenToAChatClientIsCalledWithArgumentsOfItsSchemaUnderARequiredChoice() {
        ChatClient client = ChatClient.create(chatModel);
        ForecastTools tools = new ForecastTools();

        String content = client.prompt().user("Will it rain in Paris?").tools(tools)
                .options(KilnChatOptions.builder().toolChoice("required").maxTokens(64)).call().content();

        assertThat(tools.calls).hasSize(1);
        assertThat(tools.calls.get(0)).matches("(CELSIUS|FAHRENHEIT) (true|false)");
        // Spring AI's default result converter writes the tool's return value as JSON.
        assertThat(content).isEqualTo("\"sunny\"");
    }
}
