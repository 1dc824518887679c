package ai.kiln.springai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineMetrics;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.SamplingParams;
import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationHandler;
import io.micrometer.observation.ObservationRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.Message;
import org.springframework.ai.chat.messages.SystemMessage;
import org.springframework.ai.chat.messages.ToolResponseMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.observation.ChatModelObservationContext;
import org.springframework.ai.chat.observation.ChatModelObservationDocumentation;
import org.springframework.ai.chat.observation.DefaultChatModelObservationConvention;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.content.Media;
import org.springframework.ai.support.ToolCallbacks;
import org.springframework.ai.tool.annotation.Tool;
import org.springframework.core.io.ByteArrayResource;
import org.springframework.util.MimeTypeUtils;
import reactor.core.Disposable;

/**
 * {@link KilnChatModel} on an engine of its own (no Spring context): what it refuses, stop
 * sequences, portable options, observations, and cancellation by dispose and by interrupt.
 */
class KilnChatModelTest {

    private static final List<Message> CONVERSATION = List.of(new SystemMessage("You are terse."),
            new UserMessage("Hello"));
    private static final List<Map<String, Object>> ENGINE_MESSAGES = List.of(
            Map.of("role", "system", "content", "You are terse."), Map.of("role", "user", "content", "Hello"));
    /** Greedy decoding of the conversation runs this long without an end-of-sequence token. */
    private static final int LONG_REPLY_TOKENS = 450;

    private static Engine engine;
    private static KilnChatModel model;

    @BeforeAll
    static void startEngine() {
        engine = Engine.create(TestModels.llama3(), EngineOptions.builder().device("cpu").kvCacheBytes(16L << 20).build());
        model = KilnChatModel.builder().engine(engine).modelName("llama3")
                .defaultOptions(KilnChatOptions.builder().temperature(0.0).maxTokens(12).build()).build();
    }

    @AfterAll
    static void closeEngine() {
        engine.close();
    }

    private static String text(ChatResponse response) {
        return response.getResult().getOutput().getText();
    }

    private static GenerateResult greedy(int maxTokens) {
        return engine.generate(GenerateRequest.ofChat(ENGINE_MESSAGES, SamplingParams.greedy(maxTokens)));
    }

    static class ClockTools {
        @Tool(description = "The current time")
        String now() {
            return "12:00";
        }
    }

    @Test
    void aRequiredToolChoiceMakesTheReplyOneCallOfTheTool() {
        Prompt withTools = new Prompt(CONVERSATION, KilnChatOptions.builder()
                .toolCallbacks(ToolCallbacks.from(new ClockTools())).toolChoice("required").maxTokens(64).build());

        ChatResponse response = model.call(withTools);

        assertThat(response.getResult().getMetadata().getFinishReason()).isEqualTo("TOOL_CALLS");
        AssistantMessage reply = response.getResult().getOutput();
        assertThat(reply.getToolCalls()).hasSize(1);
        AssistantMessage.ToolCall call = reply.getToolCalls().get(0);
        assertThat(call.name()).isEqualTo("now");
        assertThat(call.arguments()).isEqualTo("{}");
        assertThat(call.id()).matches("call_[0-9a-f]{24}");

        // Streamed: no text before the forced call; the last response carries it.
        List<ChatResponse> streamed = model.stream(withTools).collectList().block(java.time.Duration.ofSeconds(30));
        assertThat(streamed).isNotEmpty();
        ChatResponse last = streamed.get(streamed.size() - 1);
        assertThat(last.getResult().getMetadata().getFinishReason()).isEqualTo("TOOL_CALLS");
        assertThat(last.getResult().getOutput().getToolCalls()).hasSize(1);
        assertThat(last.getResult().getOutput().getToolCalls().get(0).name()).isEqualTo("now");
        assertThat(last.getResult().getOutput().getToolCalls().get(0).arguments()).isEqualTo("{}");
        assertThat(streamed.subList(0, streamed.size() - 1)).allSatisfy(r -> assertThat(r.getResult().getOutput()
                .getText()).isEmpty());
    }

    /** Streamed with tools shown but not forced: the pieces make up the blocking reply (no call in it here). */
    @Test
    void aStreamShownToolsGivesTheBlockingReplyPieceByPiece() {
        Prompt withTools = new Prompt(CONVERSATION, KilnChatOptions.builder()
                .toolCallbacks(ToolCallbacks.from(new ClockTools())).temperature(0.0).maxTokens(24).build());
        ChatResponse whole = model.call(withTools);
        List<ChatResponse> streamed = model.stream(withTools).collectList().block(java.time.Duration.ofSeconds(30));
        String text = streamed.stream().map(r -> r.getResult().getOutput().getText() == null ? ""
                : r.getResult().getOutput().getText()).reduce("", String::concat);
        if (whole.getResult().getOutput().getToolCalls().isEmpty()) {
            assertThat(text).isEqualTo(whole.getResult().getOutput().getText());
        } else {
            assertThat(streamed.get(streamed.size() - 1).getResult().getOutput().getToolCalls())
                    .isEqualTo(whole.getResult().getOutput().getToolCalls().stream().map(c -> c).toList());
        }
    }

    @Test
    void aRequiredToolChoiceWithoutToolsIsRefused() {
        assertThatThrownBy(() -> model.call(new Prompt(CONVERSATION, KilnChatOptions.builder().toolChoice("required")
                .build()))).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("at least one tool");
        assertThatThrownBy(() -> KilnChatOptions.builder().toolChoice("always").build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'always'");
    }

    @Test
    void toolCallsAndResponsesReachTheTemplateAndMediaIsRefused() {
        ToolResponseMessage toolResponse = ToolResponseMessage.builder()
                .responses(List.of(new ToolResponseMessage.ToolResponse("1", "now", "12:00"))).build();
        AssistantMessage toolCall = AssistantMessage.builder().content("")
                .toolCalls(List.of(new AssistantMessage.ToolCall("1", "function", "now", "{}"))).build();
        UserMessage withImage = UserMessage.builder().text("What is this?")
                .media(new Media(MimeTypeUtils.IMAGE_PNG, new ByteArrayResource(new byte[] {1, 2, 3}))).build();

        ChatResponse response = model.call(new Prompt(List.of(new UserMessage("Hi"), toolCall, toolResponse)));

        // The fixture's template prints each message's content; the call's turn has none.
        assertThat(text(response)).isEqualTo(engine.generate(GenerateRequest.ofChat(List.of(
                Map.of("role", "user", "content", "Hi"), Map.of("role", "assistant", "content", ""),
                Map.of("role", "tool", "content", "12:00")), SamplingParams.greedy(12))).text());
        assertThatThrownBy(() -> model.call(new Prompt(withImage)))
                .isInstanceOf(UnsupportedOperationException.class).hasMessageContaining("text-only");
    }

    @Test
    void aRequestForAnotherModelIsRefused() {
        assertThatThrownBy(() -> model.call(new Prompt(CONVERSATION, KilnChatOptions.builder().model("gpt-4o").build())))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'gpt-4o'")
                .hasMessageContaining("serves 'llama3'");
        ChatResponse named = model.call(new Prompt(CONVERSATION, KilnChatOptions.builder().model("llama3").build()));
        assertThat(named.getMetadata().getModel()).isEqualTo("llama3");
    }

    @Test
    void anOptionOutOfRangeIsRefusedNamingIt() {
        assertThatThrownBy(() -> model.call(new Prompt(CONVERSATION, KilnChatOptions.builder().topP(1.5).build())))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("top_p");
    }

    @Test
    void portableChatOptionsOverrideTheDefaultsToo() {
        ChatOptions portable = ChatOptions.builder().maxTokens(4).build();

        ChatResponse response = model.call(new Prompt(CONVERSATION, portable));

        assertThat(text(response)).isEqualTo(greedy(4).text());
        assertThat(response.getMetadata().getUsage().getCompletionTokens()).isEqualTo(4);
    }

    @Test
    void aStopSequenceEndsTheReplyBeforeIt() {
        String full = greedy(40).text();
        // A run of ASCII letters well inside the greedy reply: the reply must end just before its
        // first occurrence.
        Matcher letters = Pattern.compile("[a-z]{2,}").matcher(full);
        assertThat(letters.find(3)).as("a run of letters in %s", full).isTrue();
        String stop = letters.group();
        String expected = full.substring(0, full.indexOf(stop));
        Prompt prompt = new Prompt(CONVERSATION, KilnChatOptions.builder().maxTokens(40).stopSequences(stop).build());

        ChatResponse called = model.call(prompt);
        List<ChatResponse> streamed = model.stream(prompt).collectList().block(Duration.ofSeconds(60));

        assertThat(text(called)).isEqualTo(expected);
        assertThat(called.getResult().getMetadata().getFinishReason()).isEqualTo("STOP");
        assertThat((String) called.getResult().getMetadata().get(KilnChatModel.STOP_REASON_METADATA)).isEqualTo(stop);
        assertThat(streamed.stream().map(KilnChatModelTest::text).collect(Collectors.joining())).isEqualTo(expected);
        assertThat(streamed.get(streamed.size() - 1).getResult().getMetadata().getFinishReason()).isEqualTo("STOP");
    }

    @Test
    void callsAndStreamsAreObservedTheWaySpringAiModelsAre() {
        List<Observation.Context> stopped = new CopyOnWriteArrayList<>();
        ObservationRegistry registry = ObservationRegistry.create();
        registry.observationConfig().observationHandler(new ObservationHandler<Observation.Context>() {
            @Override
            public boolean supportsContext(Observation.Context context) {
                return true;
            }

            @Override
            public void onStop(Observation.Context context) {
                stopped.add(context);
            }
        });
        KilnChatModel observed = KilnChatModel.builder().engine(engine).modelName("llama3")
                .defaultOptions(model.getOptions()).observationRegistry(registry).build();

        String calledText = text(observed.call(new Prompt(CONVERSATION)));
        observed.stream(new Prompt(CONVERSATION)).blockLast(Duration.ofSeconds(60));

        // A stream's observation stops just after its completion reaches the subscriber.
        Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> stopped.size() == 2);
        assertThat(stopped).hasSize(2).allSatisfy(context -> {
            assertThat(context).isInstanceOf(ChatModelObservationContext.class);
            assertThat(context.getName()).isEqualTo(DefaultChatModelObservationConvention.DEFAULT_NAME);
            assertThat(context.getLowCardinalityKeyValue(
                    ChatModelObservationDocumentation.LowCardinalityKeyNames.AI_PROVIDER.asString()).getValue())
                    .isEqualTo(KilnChatModel.PROVIDER_NAME);
            assertThat(context.getLowCardinalityKeyValue(
                    ChatModelObservationDocumentation.LowCardinalityKeyNames.RESPONSE_MODEL.asString()).getValue())
                    .isEqualTo("llama3");
            ChatResponse response = ((ChatModelObservationContext) context).getResponse();
            assertThat(text(response)).isEqualTo(calledText);
            assertThat(response.getMetadata().getUsage().getCompletionTokens()).isEqualTo(12);
        });
        assertThat(((ChatModelObservationContext) stopped.get(0)).isStreaming()).isFalse();
        assertThat(((ChatModelObservationContext) stopped.get(1)).isStreaming()).isTrue();
    }

    @Test
    void disposingAStreamCancelsItsEngineRequest() throws InterruptedException {
        Prompt longReply = new Prompt(CONVERSATION, KilnChatOptions.builder().maxTokens(LONG_REPLY_TOKENS).build());
        assertThat(greedy(LONG_REPLY_TOKENS).numGeneratedTokens()).isEqualTo(LONG_REPLY_TOKENS);
        EngineMetrics before = engine.metrics();
        CountDownLatch twoReceived = new CountDownLatch(2);

        Disposable subscription = model.stream(longReply).subscribe(response -> twoReceived.countDown());
        assertThat(twoReceived.await(60, TimeUnit.SECONDS)).isTrue();
        subscription.dispose();

        awaitIdle(before);
        assertThat(engine.metrics().generationTokens() - before.generationTokens()).isLessThan(LONG_REPLY_TOKENS);
    }

    @Test
    void anInterruptedCallCancelsItsEngineRequest() {
        Prompt longReply = new Prompt(CONVERSATION, KilnChatOptions.builder().maxTokens(LONG_REPLY_TOKENS).build());
        assertThat(greedy(LONG_REPLY_TOKENS).numGeneratedTokens()).isEqualTo(LONG_REPLY_TOKENS);
        EngineMetrics before = engine.metrics();

        // Interrupted before the call: it submits, finds the interrupt while waiting, cancels.
        Thread.currentThread().interrupt();
        try {
            assertThatThrownBy(() -> model.call(longReply)).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("interrupted").hasMessageContaining("cancelled");
            assertThat(Thread.currentThread().isInterrupted()).isTrue();
        } finally {
            Thread.interrupted();
        }

        awaitIdle(before);
        assertThat(engine.metrics().generationTokens() - before.generationTokens()).isLessThan(LONG_REPLY_TOKENS);
    }

    /** Waits until the one request submitted since {@code before} has finished. */
    private static void awaitIdle(EngineMetrics before) {
        Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> {
            EngineMetrics now = engine.metrics();
            return now.requestsFinished() == before.requestsFinished() + 1 && now.numRunning() == 0
                    && now.numWaiting() == 0;
        });
    }
}
