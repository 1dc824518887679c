package ai.kiln.langchain4j;

import static ai.kiln.langchain4j.TinyLlama.message;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestAbortedException;
import ai.kiln.api.RequestRejectedException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ImageContent;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.TextContent;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.LangChain4jException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.listener.ChatModelErrorContext;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.listener.ChatModelRequestContext;
import dev.langchain4j.model.chat.listener.ChatModelResponseContext;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.request.json.JsonSchema;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@link KilnChatModel} on the tiny Llama 3, checked against the same requests sent straight to the engine. */
class KilnChatModelTest {

    private static Engine engine;
    private static KilnChatModel model;

    @BeforeAll
    static void startEngine() {
        engine = TinyLlama.newEngine();
        model = KilnChatModel.builder().engine(engine).modelName(TinyLlama.NAME).build();
    }

    @AfterAll
    static void closeEngine() {
        model.close();
        engine.close();
    }

    private static ChatRequest greedy(Integer maxOutputTokens, dev.langchain4j.data.message.ChatMessage... messages) {
        return ChatRequest.builder().messages(messages).temperature(0.0).maxOutputTokens(maxOutputTokens).build();
    }

    @Test
    void answersAConversationExactlyAsTheEngineDoes() {
        ChatResponse response = model.chat(greedy(24, SystemMessage.from("Be terse."), UserMessage.from("Hi"),
                AiMessage.from("Hello."), UserMessage.from("Count to ten")));

        GenerateResult direct = TinyLlama.generateGreedily(engine, List.of(message("system", "Be terse."),
                message("user", "Hi"), message("assistant", "Hello."), message("user", "Count to ten")), 24);
        assertEquals(direct.text(), response.aiMessage().text());
        assertEquals(ai.kiln.api.FinishReason.LENGTH, direct.finishReason());
        assertEquals(FinishReason.LENGTH, response.finishReason());
        assertEquals(new TokenUsage(direct.promptTokenIds().length, 24, direct.promptTokenIds().length + 24),
                response.tokenUsage());
        assertEquals(TinyLlama.NAME, response.modelName());
        assertTrue(response.id().startsWith("kiln-"), response.id());
    }

    @Test
    void promptTokensAreTheLlama3TemplateRenderingOfTheMessages() {
        ChatResponse response = model.chat(greedy(1, SystemMessage.from("Be terse."), UserMessage.from("Hi")));

        // Written out by hand: what Llama 3's template makes of a system and a user message.
        String rendered = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe terse.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n";
        assertEquals(engine.tokenizer().encode(rendered, false).length, response.tokenUsage().inputTokenCount());
        assertEquals(1, response.tokenUsage().outputTokenCount());
    }

    @Test
    void maxOutputTokensEndsTheAnswerWithLength() {
        ChatResponse response = model.chat(greedy(5, UserMessage.from("Hello")));

        GenerateResult direct = TinyLlama.generateGreedily(engine, List.of(message("user", "Hello")), 5);
        assertEquals(direct.text(), response.aiMessage().text());
        assertEquals(5, response.tokenUsage().outputTokenCount());
        assertEquals(FinishReason.LENGTH, response.finishReason());
    }

    @Test
    void anEndOfSequenceTokenEndsTheAnswerWithStop() {
        // Unbounded: this prompt's greedy answer ends with an end-of-sequence token inside the context.
        ChatResponse response = model.chat(greedy(null, UserMessage.from("Count to ten")));

        GenerateResult direct = TinyLlama.generateGreedily(engine, List.of(message("user", "Count to ten")), null);
        assertEquals(ai.kiln.api.FinishReason.STOP, direct.finishReason());
        assertEquals(FinishReason.STOP, response.finishReason());
        assertEquals(direct.text(), response.aiMessage().text());
        assertEquals(direct.tokenIds().length, response.tokenUsage().outputTokenCount());
    }

    @Test
    void aStopSequenceCutsTheAnswerBeforeIt() {
        GenerateResult direct = TinyLlama.generateGreedily(engine, List.of(message("user", "Hello")), 24);
        String stop = TinyLlama.stopSequenceInside(direct.text());
        String expected = direct.text().substring(0, direct.text().indexOf(stop));

        ChatResponse response = model.chat(ChatRequest.builder().messages(UserMessage.from("Hello")).temperature(0.0)
                .maxOutputTokens(24).stopSequences(List.of(stop)).build());

        assertEquals(expected, response.aiMessage().text());
        assertEquals(FinishReason.STOP, response.finishReason());
        assertTrue(response.tokenUsage().outputTokenCount() < 24, response.tokenUsage().toString());
    }

    @Test
    void defaultRequestParametersApplyAndEachRequestOverridesThem() {
        KilnChatModel withDefaults = KilnChatModel.builder().engine(engine).modelName(TinyLlama.NAME)
                .defaultRequestParameters(ChatRequestParameters.builder().temperature(0.0).maxOutputTokens(7).build())
                .build();
        List<Map<String, Object>> hello = List.of(message("user", "Hello"));

        ChatResponse byDefault = withDefaults.chat(ChatRequest.builder().messages(UserMessage.from("Hello")).build());
        ChatResponse overridden = withDefaults.chat(
                ChatRequest.builder().messages(UserMessage.from("Hello")).maxOutputTokens(3).build());

        assertEquals(TinyLlama.generateGreedily(engine, hello, 7).text(), byDefault.aiMessage().text());
        assertEquals(7, byDefault.tokenUsage().outputTokenCount());
        assertEquals(TinyLlama.generateGreedily(engine, hello, 3).text(), overridden.aiMessage().text());
        assertEquals(3, overridden.tokenUsage().outputTokenCount());
    }

    @Test
    void listenersSeeTheMergedRequestTheResponseAndTheError() {
        List<Object> events = new CopyOnWriteArrayList<>();
        ChatModelListener recorder = new ChatModelListener() {
            @Override
            public void onRequest(ChatModelRequestContext context) {
                events.add(context.chatRequest());
            }

            @Override
            public void onResponse(ChatModelResponseContext context) {
                events.add(context.chatResponse());
            }

            @Override
            public void onError(ChatModelErrorContext context) {
                events.add(context.error());
            }
        };
        KilnChatModel listened = KilnChatModel.builder().engine(engine).modelName(TinyLlama.NAME).temperature(0.0)
                .maxOutputTokens(4).listeners(List.of(recorder)).build();

        ChatResponse response = listened.chat(ChatRequest.builder().messages(UserMessage.from("Hi")).build());
        UnsupportedFeatureException refused = assertThrows(UnsupportedFeatureException.class,
                () -> listened.chat(ChatRequest.builder().messages(UserMessage.from(TextContent.from("What is this?"),
                        ImageContent.from("https://example.com/cat.png"))).build()));

        assertEquals(4, events.size(), events.toString());
        ChatRequest seen = (ChatRequest) events.get(0);
        assertEquals(0.0, seen.temperature());
        assertEquals(4, seen.maxOutputTokens());
        assertEquals(TinyLlama.NAME, seen.modelName());
        assertSame(response, events.get(1));
        assertInstanceOf(ChatRequest.class, events.get(2));
        assertSame(refused, events.get(3));
    }

    @Test
    void aJsonSchemaResponseFormatMakesTheAnswerJsonTheSchemaAccepts() throws Exception {
        // A finite schema (an enum and a boolean), so that even random weights finish the answer.
        JsonSchema schema = JsonSchema.builder().name("forecast")
                .rootElement(JsonObjectSchema.builder().addEnumProperty("unit", List.of("celsius", "fahrenheit"))
                        .addBooleanProperty("raining").required("unit", "raining").build())
                .build();
        ChatRequest request = ChatRequest.builder().messages(UserMessage.from("Weather in Paris?"))
                .responseFormat(ResponseFormat.builder().type(ResponseFormatType.JSON).jsonSchema(schema).build())
                .temperature(0.0).maxOutputTokens(64).build();

        ChatResponse response = model.chat(request);

        assertEquals(FinishReason.STOP, response.finishReason());
        JsonNode answer = new ObjectMapper().readTree(response.aiMessage().text());
        assertEquals(List.of("unit", "raining"), answer.properties().stream().map(Map.Entry::getKey).toList());
        assertTrue(List.of("celsius", "fahrenheit").contains(answer.get("unit").textValue()), answer.toString());
        assertTrue(answer.get("raining").isBoolean(), answer.toString());
    }

    @Test
    void requiredToolChoiceMakesTheAnswerOneCallOfAnOfferedTool() throws Exception {
        ToolSpecification forecast = ToolSpecification.builder().name("forecast").description("The forecast")
                .parameters(JsonObjectSchema.builder().addEnumProperty("unit", List.of("celsius", "fahrenheit"))
                        .addBooleanProperty("hourly").required("unit", "hourly").build())
                .build();
        ToolSpecification now = ToolSpecification.builder().name("now").description("The time").build();
        ChatRequest request = ChatRequest.builder().messages(UserMessage.from("Weather in Paris?"))
                .toolSpecifications(forecast, now).toolChoice(ToolChoice.REQUIRED).temperature(0.0).maxOutputTokens(64).build();

        ChatResponse response = model.chat(request);

        assertEquals(FinishReason.TOOL_EXECUTION, response.finishReason());
        assertNull(response.aiMessage().text());
        assertEquals(1, response.aiMessage().toolExecutionRequests().size());
        ToolExecutionRequest call = response.aiMessage().toolExecutionRequests().get(0);
        assertTrue(call.id().matches("call_[0-9a-f]{24}"), call.id());
        JsonNode arguments = new ObjectMapper().readTree(call.arguments());
        if (call.name().equals("now")) {
            assertEquals("{}", call.arguments());
        } else {
            assertEquals("forecast", call.name());
            assertTrue(List.of("celsius", "fahrenheit").contains(arguments.get("unit").textValue()), call.arguments());
            assertTrue(arguments.get("hourly").isBoolean(), call.arguments());
            assertEquals(2, arguments.size(), call.arguments());
        }
    }

    @Test
    void aCallAndItsResultInTheHistoryReachTheTemplate() {
        ToolExecutionRequest call = ToolExecutionRequest.builder().id("call-1").name("now").arguments("{}").build();
        ChatRequest request = ChatRequest.builder().messages(UserMessage.from("Time?"), AiMessage.from(call),
                ToolExecutionResultMessage.from(call, "noon")).temperature(0.0).maxOutputTokens(8).build();

        ChatResponse response = model.chat(request);

        // The fixture's template prints each message's content; the call's turn has none.
        assertEquals(TinyLlama.generateGreedily(engine, List.of(message("user", "Time?"), message("assistant", ""),
                message("tool", "noon")), 8).text(), response.aiMessage().text());
    }

    @Test
    void aPromptLongerThanTheContextIsAnInvalidRequest() {
        String longText = "word ".repeat(2000);

        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> model.chat(greedy(4, UserMessage.from(longText))));
        assertInstanceOf(RequestRejectedException.class, e.getCause());
        assertTrue(e.getMessage().startsWith("the Kiln engine refused the request for model 'llama3-gqa': "),
                e.getMessage());
    }

    @Test
    void anInterruptedCallCancelsItsRequestAndThrows() {
        int fullLength = TinyLlama.generateGreedily(engine, List.of(message("user", "Hello")), null).tokenIds().length;
        long finishedBefore = engine.metrics().requestsFinished();
        long generatedBefore = engine.metrics().generationTokens();
        Thread.currentThread().interrupt();
        try {
            LangChain4jException e = assertThrows(LangChain4jException.class,
                    () -> model.chat(greedy(null, UserMessage.from("Hello"))));
            assertTrue(e.getMessage().startsWith("interrupted while waiting for request kiln-"), e.getMessage());
            assertTrue(Thread.currentThread().isInterrupted(), "the interrupt flag is kept");
        } finally {
            Thread.interrupted();
        }
        TinyLlama.awaitRequestsFinished(engine, finishedBefore + 1);
        long generated = engine.metrics().generationTokens() - generatedBefore;
        assertTrue(generated < fullLength, "cancelled after " + generated + " of " + fullLength + " tokens");
    }

    @Test
    void aRequestTheEngineAbortsThrowsRatherThanReturningATruncatedAnswer() throws Exception {
        Engine closing = Engine.create(TinyLlama.directory(),
                TinyLlama.options().toBuilder().shutdownGrace(Duration.ZERO).build());
        KilnChatModel onClosing = KilnChatModel.builder().engine(closing).modelName(TinyLlama.NAME).build();
        // Unbounded, so that the answer (to the end of the context) is still being generated at close.
        CompletableFuture<ChatResponse> call = CompletableFuture.supplyAsync(
                () -> onClosing.chat(greedy(null, UserMessage.from("Hello"))));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (closing.metrics().numRunning() == 0 && System.nanoTime() < deadline) {
            LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(100));
        }

        closing.close();

        ExecutionException e = assertThrows(ExecutionException.class, () -> call.get(10, TimeUnit.SECONDS));
        assertInstanceOf(RequestAbortedException.class, e.getCause());
        assertTrue(e.getCause().getMessage().endsWith(" was aborted before its answer was complete (the engine closed"
                + " before the request finished (grace period PT0S))"), e.getCause().getMessage());
    }
}
