package ai.kiln.langchain4j;

import static ai.kiln.langchain4j.TinyLlama.message;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.langchain4j.agent.tool.P;
import dev.langchain4j.agent.tool.ReturnBehavior;
import dev.langchain4j.agent.tool.Tool;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.memory.chat.MessageWindowChatMemory;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.service.AiServices;
import dev.langchain4j.service.Result;
import dev.langchain4j.service.SystemMessage;
import dev.langchain4j.service.TokenStream;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** LangChain4j's AiServices over the Kiln models: what an application would write. */
class KilnAiServicesTest {

    interface Assistant {
        String chat(String message);
    }

    interface TerseAssistant {
        @SystemMessage("Be terse.")
        String chat(String message);
    }

    interface StreamingAssistant {
        TokenStream chat(String message);
    }

    interface WeatherAssistant {
        Result<String> chat(String message);
    }

    enum Unit {
        CELSIUS, FAHRENHEIT
    }

    /** A tool whose arguments form a finite language, so that random weights finish the call. */
    static final class Forecasts {
        final List<String> calls = new CopyOnWriteArrayList<>();

        @Tool(value = "The forecast in the unit asked for", returnBehavior = ReturnBehavior.IMMEDIATE)
        String forecast(@P("temperature unit") Unit unit, @P("hour by hour") boolean hourly) {
            calls.add(unit + " " + hourly);
            return "sunny";
        }
    }

    private static Engine engine;
    private static KilnChatModel chatModel;
    private static KilnStreamingChatModel streamingModel;

    @BeforeAll
    static void startEngine() {
        engine = TinyLlama.newEngine();
        chatModel = KilnChatModel.builder().engine(engine).modelName(TinyLlama.NAME).temperature(0.0)
                .maxOutputTokens(16).build();
        streamingModel = KilnStreamingChatModel.builder().engine(engine).modelName(TinyLlama.NAME).temperature(0.0)
                .maxOutputTokens(16).build();
    }

    @AfterAll
    static void closeEngine() {
        engine.close();
    }

    @Test
    void aRequiredToolIsCalledWithArgumentsOfItsParametersSchema() throws Exception {
        KilnChatModel requiringTools = KilnChatModel.builder().engine(engine).modelName(TinyLlama.NAME)
                .temperature(0.0).maxOutputTokens(64)
                .defaultRequestParameters(ChatRequestParameters.builder().toolChoice(ToolChoice.REQUIRED).build())
                .build();
        Forecasts forecasts = new Forecasts();
        // IMMEDIATE: under REQUIRED every answer is a call, so the service returns after the first.
        WeatherAssistant assistant = AiServices.builder(WeatherAssistant.class).chatModel(requiringTools)
                .tools(forecasts).build();

        Result<String> result = assistant.chat("Will it rain in Paris?");

        assertEquals(1, forecasts.calls.size(), forecasts.calls.toString());
        assertEquals(1, result.toolExecutions().size());
        ToolExecutionRequest call = result.toolExecutions().get(0).request();
        assertEquals("forecast", call.name());
        JsonNode arguments = new ObjectMapper().readTree(call.arguments());
        assertEquals(List.of("arg0", "arg1"), arguments.properties().stream().map(Map.Entry::getKey).toList(),
                call.arguments());
        assertTrue(List.of("CELSIUS", "FAHRENHEIT").contains(arguments.get("arg0").textValue()), call.arguments());
        assertTrue(arguments.get("arg1").isBoolean(), call.arguments());
        assertEquals(arguments.get("arg0").textValue() + " " + arguments.get("arg1").booleanValue(),
                forecasts.calls.get(0));
        assertEquals("sunny", result.toolExecutions().get(0).result());
    }

    @Test
    void anAssistantAnswersWithTheEnginesGreedyText() {
        Assistant assistant = AiServices.create(Assistant.class, chatModel);

        String answer = assistant.chat("Hello");

        assertEquals(TinyLlama.generateGreedily(engine, List.of(message("user", "Hello")), 16).text(), answer);
    }

    @Test
    void aSystemMessageAnnotationBecomesTheSystemTurn() {
        TerseAssistant assistant = AiServices.create(TerseAssistant.class, chatModel);

        String answer = assistant.chat("Hello");

        assertEquals(TinyLlama.generateGreedily(engine,
                List.of(message("system", "Be terse."), message("user", "Hello")), 16).text(), answer);
    }

    @Test
    void chatMemoryCarriesTheEarlierTurnsIntoTheNextPrompt() {
        Assistant assistant = AiServices.builder(Assistant.class).chatModel(chatModel)
                .chatMemory(MessageWindowChatMemory.withMaxMessages(10)).build();

        String first = assistant.chat("Hello");
        String second = assistant.chat("Count to ten");

        assertEquals(TinyLlama.generateGreedily(engine, List.of(message("user", "Hello"), message("assistant", first),
                message("user", "Count to ten")), 16).text(), second);
    }

    @Test
    void aTokenStreamStreamsTheSameAnswer() throws Exception {
        StreamingAssistant assistant = AiServices.create(StreamingAssistant.class, streamingModel);
        List<String> partials = new CopyOnWriteArrayList<>();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();

        assistant.chat("Hello").onPartialResponse(partials::add).onCompleteResponse(done::complete)
                .onError(done::completeExceptionally).start();
        ChatResponse response = done.get(10, TimeUnit.SECONDS);

        String expected = TinyLlama.generateGreedily(engine, List.of(message("user", "Hello")), 16).text();
        assertEquals(expected, response.aiMessage().text());
        assertEquals(expected, String.join("", partials));
        assertEquals(16, response.tokenUsage().outputTokenCount());
    }

    @Test
    void aTokenStreamCanBeCancelledFromItsPartialResponseHandler() {
        // Unbounded, so that the answer (to the end of the context) would take hundreds of steps.
        KilnStreamingChatModel unbounded = KilnStreamingChatModel.builder().engine(engine).modelName(TinyLlama.NAME)
                .temperature(0.0).build();
        StreamingAssistant assistant = AiServices.create(StreamingAssistant.class, unbounded);
        int fullLength = TinyLlama.generateGreedily(engine, List.of(message("user", "Hello")), null).tokenIds().length;
        long finishedBefore = engine.metrics().requestsFinished();
        long generatedBefore = engine.metrics().generationTokens();
        List<String> partials = new CopyOnWriteArrayList<>();
        AtomicBoolean ended = new AtomicBoolean();

        assistant.chat("Hello")
                .onPartialResponseWithContext((partial, context) -> {
                    partials.add(partial.text());
                    context.streamingHandle().cancel();
                })
                .onCompleteResponse(response -> ended.set(true))
                .onError(error -> ended.set(true))
                .start();

        TinyLlama.awaitRequestsFinished(engine, finishedBefore + 1);
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200)); // for callbacks that should not come
        assertEquals(1, partials.size(), partials.toString());
        assertFalse(ended.get(), "a cancelled stream neither completes nor fails");
        long generated = engine.metrics().generationTokens() - generatedBefore;
        assertTrue(generated < fullLength, "the cancelled request generated " + generated + " of " + fullLength
                + " tokens");
    }
}
