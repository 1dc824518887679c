package ai.kiln.langchain4j;

import static ai.kiln.langchain4j.TinyLlama.message;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestAbortedException;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.ModelNotFoundException;
import dev.langchain4j.model.chat.listener.ChatModelErrorContext;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@link KilnStreamingChatModel} on the tiny Llama 3: partial responses, completion, errors and cancellation. */
class KilnStreamingChatModelTest {

    private static Engine engine;
    private static KilnStreamingChatModel model;

    @BeforeAll
    static void startEngine() {
        engine = TinyLlama.newEngine();
        model = KilnStreamingChatModel.builder().engine(engine).modelName(TinyLlama.NAME).build();
    }

    @AfterAll
    static void closeEngine() {
        model.close();
        engine.close();
    }

    private static ChatRequest greedy(Integer maxOutputTokens, ChatMessage... messages) {
        return ChatRequest.builder().messages(messages).temperature(0.0).maxOutputTokens(maxOutputTokens).build();
    }

    /** Waits a little for callbacks that should not come (a cancelled stream's). */
    private static void graceForStragglers() {
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
    }

    @Test
    void partialResponsesConcatenateToTheCompleteAnswerWhichIsTheEngines() {
        RecordingHandler handler = new RecordingHandler();

        model.chat(greedy(24, SystemMessage.from("Be terse."), UserMessage.from("Hi"), AiMessage.from("Hello."),
                UserMessage.from("Count to ten")), handler);
        ChatResponse response = handler.awaitResponse();

        GenerateResult direct = TinyLlama.generateGreedily(engine, List.of(message("system", "Be terse."),
                message("user", "Hi"), message("assistant", "Hello."), message("user", "Count to ten")), 24);
        assertEquals(direct.text(), response.aiMessage().text());
        assertEquals(direct.text(), String.join("", handler.partials()));
        assertTrue(handler.partials().size() > 1, "streamed in " + handler.partials().size() + " piece(s)");
        assertEquals("complete", handler.kinds().get(handler.kinds().size() - 1));
        assertEquals(FinishReason.LENGTH, response.finishReason());
        assertEquals(new TokenUsage(direct.promptTokenIds().length, 24), response.tokenUsage());
        assertEquals(TinyLlama.NAME, response.modelName());
        assertTrue(response.id().startsWith("kiln-"), response.id());
        // The completion must not run on the engine loop, where a slow handler would stall every request.
        assertNotEquals("kiln-engine-loop", handler.events.get(handler.events.size() - 1).thread());
    }

    @Test
    void anEndOfSequenceTokenEndsTheStreamWithStop() {
        RecordingHandler handler = new RecordingHandler();

        model.chat(greedy(null, UserMessage.from("Count to ten")), handler);
        ChatResponse response = handler.awaitResponse();

        GenerateResult direct = TinyLlama.generateGreedily(engine, List.of(message("user", "Count to ten")), null);
        assertEquals(FinishReason.STOP, response.finishReason());
        assertEquals(direct.text(), String.join("", handler.partials()));
        assertEquals(direct.tokenIds().length, response.tokenUsage().outputTokenCount());
    }

    @Test
    void aStopSequenceNeverReachesThePartialResponses() {
        GenerateResult direct = TinyLlama.generateGreedily(engine, List.of(message("user", "Hello")), 24);
        String stop = TinyLlama.stopSequenceInside(direct.text());
        String expected = direct.text().substring(0, direct.text().indexOf(stop));
        RecordingHandler handler = new RecordingHandler();

        model.chat(ChatRequest.builder().messages(UserMessage.from("Hello")).temperature(0.0).maxOutputTokens(24)
                .stopSequences(List.of(stop)).build(), handler);
        ChatResponse response = handler.awaitResponse();

        assertEquals(expected, response.aiMessage().text());
        assertEquals(expected, String.join("", handler.partials()));
        assertEquals(FinishReason.STOP, response.finishReason());
    }

    @Test
    void cancellingFromTheHandlerStopsTheRequestAndEndsTheCallbacks() {
        // Unbounded, this prompt's greedy answer runs to the end of the context: hundreds of steps.
        int fullLength = TinyLlama.generateGreedily(engine, List.of(message("user", "Hello")), null).tokenIds().length;
        long finishedBefore = engine.metrics().requestsFinished();
        long generatedBefore = engine.metrics().generationTokens();
        RecordingHandler handler = new RecordingHandler((count, handle) -> {
            if (count == 1) {
                handle.cancel();
            }
        });

        model.chat(greedy(null, UserMessage.from("Hello")), handler);

        TinyLlama.awaitRequestsFinished(engine, finishedBefore + 1);
        graceForStragglers();
        assertEquals(List.of("partial"), handler.kinds());
        assertTrue(handler.handle().isCancelled());
        assertFalse(handler.end.isDone());
        long generated = engine.metrics().generationTokens() - generatedBefore;
        assertTrue(generated < fullLength, "the cancelled request generated " + generated + " of " + fullLength
                + " tokens");
    }

    @Test
    void aHandlerThatThrowsGetsItsExceptionOnceAndItsRequestStops() {
        int fullLength = TinyLlama.generateGreedily(engine, List.of(message("user", "Hello")), null).tokenIds().length;
        long finishedBefore = engine.metrics().requestsFinished();
        long generatedBefore = engine.metrics().generationTokens();
        IllegalStateException thrown = new IllegalStateException("the UI went away");
        RecordingHandler handler = new RecordingHandler((count, handle) -> {
            throw thrown;
        });

        model.chat(greedy(null, UserMessage.from("Hello")), handler);

        assertSame(thrown, handler.awaitError());
        TinyLlama.awaitRequestsFinished(engine, finishedBefore + 1);
        graceForStragglers();
        assertEquals(List.of("partial", "error"), handler.kinds());
        assertTrue(engine.metrics().generationTokens() - generatedBefore < fullLength);
    }

    @Test
    void refusedRequestsReachOnErrorAndTheListenersNotTheCaller() {
        List<Throwable> listenerErrors = new CopyOnWriteArrayList<>();
        KilnStreamingChatModel listened = KilnStreamingChatModel.builder().engine(engine).modelName(TinyLlama.NAME)
                .listeners(List.of(new ChatModelListener() {
                    @Override
                    public void onError(ChatModelErrorContext context) {
                        listenerErrors.add(context.error());
                    }
                }))
                .build();
        RecordingHandler handler = new RecordingHandler();

        listened.chat(ChatRequest.builder().messages(UserMessage.from("Weather in Paris?")).modelName("other-model")
                .build(), handler);

        Throwable error = handler.awaitError();
        assertInstanceOf(ModelNotFoundException.class, error);
        assertEquals("model 'other-model' is not served here: this Kiln engine runs '" + TinyLlama.NAME + "' only",
                error.getMessage());
        assertEquals(List.of(error), listenerErrors);
        assertEquals(List.of("error"), handler.kinds());
    }

    /**
     * Tool specifications on the streaming model: under REQUIRED the answer is one call of the tool
     * (arguments valid for its parameters), no partial text, finish reason TOOL_EXECUTION; under
     * AUTO the random-weight model writes text, streamed whole (the partials make up the answer).
     */
    @Test
    void toolCallsComeWithTheCompleteResponse() throws Exception {
        ToolSpecification forecast = ToolSpecification.builder().name("forecast").description("The forecast")
                .parameters(dev.langchain4j.model.chat.request.json.JsonObjectSchema.builder()
                        .addEnumProperty("unit", List.of("celsius", "fahrenheit")).addBooleanProperty("hourly")
                        .required("unit", "hourly").build())
                .build();
        RecordingHandler required = new RecordingHandler();
        model.chat(ChatRequest.builder().messages(UserMessage.from("Weather in Paris?"))
                .parameters(ChatRequestParameters.builder().toolSpecifications(forecast)
                        .toolChoice(dev.langchain4j.model.chat.request.ToolChoice.REQUIRED).temperature(0.0)
                        .maxOutputTokens(64).build())
                .build(), required);
        ChatResponse call = required.awaitResponse();
        assertEquals(FinishReason.TOOL_EXECUTION, call.finishReason());
        assertEquals(1, call.aiMessage().toolExecutionRequests().size());
        dev.langchain4j.agent.tool.ToolExecutionRequest request = call.aiMessage().toolExecutionRequests().get(0);
        assertEquals("forecast", request.name());
        com.fasterxml.jackson.databind.JsonNode arguments = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(request.arguments());
        assertTrue(List.of("celsius", "fahrenheit").contains(arguments.get("unit").textValue()), request.arguments());
        assertTrue(arguments.get("hourly").isBoolean(), request.arguments());
        assertEquals(List.of("complete"), required.kinds(), "no partial text before a forced call");

        RecordingHandler auto = new RecordingHandler();
        model.chat(ChatRequest.builder().messages(UserMessage.from("Weather in Paris?"))
                .parameters(ChatRequestParameters.builder().toolSpecifications(forecast).temperature(0.0)
                        .maxOutputTokens(16).build())
                .build(), auto);
        ChatResponse answer = auto.awaitResponse();
        if (answer.aiMessage().hasToolExecutionRequests()) {
            assertEquals(FinishReason.TOOL_EXECUTION, answer.finishReason());
        } else {
            assertEquals(answer.aiMessage().text(), String.join("", auto.partials()));
        }
    }

    @Test
    void anEngineClosingMidStreamEndsItWithRequestAborted() {
        Engine closing = Engine.create(TinyLlama.directory(),
                TinyLlama.options().toBuilder().shutdownGrace(Duration.ZERO).build());
        KilnStreamingChatModel onClosing = KilnStreamingChatModel.builder().engine(closing).modelName(TinyLlama.NAME)
                .build();
        CountDownLatch firstPartial = new CountDownLatch(1);
        RecordingHandler handler = new RecordingHandler((count, handle) -> firstPartial.countDown());

        onClosing.chat(greedy(null, UserMessage.from("Hello")), handler);
        try {
            assertTrue(firstPartial.await(10, TimeUnit.SECONDS));
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
        closing.close();

        Throwable error = handler.awaitError();
        assertInstanceOf(RequestAbortedException.class, error);
        assertTrue(error.getMessage().contains("the engine closed before the request finished"), error.getMessage());
    }
}
