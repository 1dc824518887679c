package ai.kiln.langchain4j;

import static ai.kiln.langchain4j.TinyLlama.message;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.kiln.api.Engine;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.response.ChatResponse;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The builders: which engine a model runs on, who closes it, and how default parameters merge. */
class KilnModelBuilderTest {

    private static Engine shared;

    @BeforeAll
    static void startEngine() {
        shared = TinyLlama.newEngine();
    }

    @AfterAll
    static void closeEngine() {
        shared.close();
    }

    @Test
    void aModelBuiltFromADirectoryOwnsItsEngineAndIsNamedAfterTheDirectory() {
        KilnChatModel owning = KilnChatModel.builder().modelDirectory(TinyLlama.directory())
                .engineOptions(TinyLlama.options()).temperature(0.0).maxOutputTokens(6).build();

        ChatResponse response = owning.chat(ChatRequest.builder().messages(UserMessage.from("Hello")).build());
        owning.close();

        assertEquals(TinyLlama.NAME, owning.modelName());
        assertEquals(TinyLlama.NAME, response.modelName());
        assertEquals(TinyLlama.generateGreedily(shared, List.of(message("user", "Hello")), 6).text(),
                response.aiMessage().text());
        IllegalStateException closed = assertThrows(IllegalStateException.class, () -> owning.chat("Hello"));
        assertEquals("the engine is closed", closed.getMessage());
        owning.close(); // idempotent
    }

    @Test
    void aStreamingModelBuiltFromADirectoryClosesItsEngine() {
        KilnStreamingChatModel owning = KilnStreamingChatModel.builder().modelDirectory(TinyLlama.directory())
                .engineOptions(TinyLlama.options()).build();
        Engine engine = owning.engine();

        owning.close();

        assertThrows(IllegalStateException.class, () -> engine.submit(
                GenerateRequest.of("Hello", SamplingParams.greedy(1))));
    }

    @Test
    void aGivenEngineOutlivesTheModelsOnIt() {
        KilnChatModel chat = KilnChatModel.builder().engine(shared).modelName(TinyLlama.NAME).build();
        KilnStreamingChatModel streaming = KilnStreamingChatModel.builder().engine(shared).modelName(TinyLlama.NAME)
                .build();

        chat.close();
        streaming.close();

        assertEquals(3, TinyLlama.generateGreedily(shared, List.of(message("user", "Hello")), 3).tokenIds().length);
    }

    @Test
    void individualSettersOverrideDefaultRequestParametersWhichFillTheRest() {
        KilnChatModel model = KilnChatModel.builder().engine(shared).modelName(TinyLlama.NAME)
                .defaultRequestParameters(ChatRequestParameters.builder().temperature(0.7).topP(0.9)
                        .maxOutputTokens(100).stopSequences("A").build())
                .temperature(0.0).stopSequences(List.of("B"))
                .build();

        assertEquals(ChatRequestParameters.builder().modelName(TinyLlama.NAME).temperature(0.0).topP(0.9)
                .maxOutputTokens(100).stopSequences("B").build(), model.defaultRequestParameters());
    }

    @Test
    void theEngineIsGivenOrCreatedNeverBothNorNeither() {
        IllegalArgumentException neither = assertThrows(IllegalArgumentException.class,
                () -> KilnChatModel.builder().build());
        assertEquals("either engine(...) or modelDirectory(...) is required", neither.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KilnChatModel.builder().engine(shared)
                .modelName(TinyLlama.NAME).modelDirectory(TinyLlama.directory()).build());
        assertThrows(IllegalArgumentException.class, () -> KilnStreamingChatModel.builder().engine(shared)
                .modelName(TinyLlama.NAME).engineOptions(TinyLlama.options()).build());
    }

    @Test
    void aGivenEngineNamesTheModelUnlessANameIsSet() {
        assertEquals(TinyLlama.NAME, shared.modelName());
        assertEquals(TinyLlama.NAME, KilnChatModel.builder().engine(shared).build().modelName());
        assertEquals("other", KilnChatModel.builder().engine(shared).modelName("other").build().modelName());
        // The default parameters may name it instead.
        KilnChatModel named = KilnChatModel.builder().engine(shared)
                .defaultRequestParameters(ChatRequestParameters.builder().modelName("tiny").build()).build();
        assertEquals("tiny", named.modelName());
    }

    @Test
    void defaultsTheEngineCannotHonourFailAtBuild() {
        // A forced call and a JSON format would both constrain every answer.
        assertThrows(InvalidRequestException.class, () -> KilnChatModel.builder().engine(shared)
                .modelName(TinyLlama.NAME)
                .defaultRequestParameters(ChatRequestParameters.builder().toolChoice(ToolChoice.REQUIRED)
                        .responseFormat(ResponseFormat.JSON)
                        .toolSpecifications(ToolSpecification.builder().name("get_weather").build()).build())
                .build());
        assertThrows(InvalidRequestException.class, () -> KilnStreamingChatModel.builder().engine(shared)
                .modelName(TinyLlama.NAME).temperature(-1.0).build());
        IllegalArgumentException otherModel = assertThrows(IllegalArgumentException.class,
                () -> KilnChatModel.builder().engine(shared).modelName(TinyLlama.NAME)
                        .defaultRequestParameters(ChatRequestParameters.builder().modelName("gpt-4o").build())
                        .build());
        assertEquals("defaultRequestParameters names model 'gpt-4o', but the model is 'llama3-gqa'",
                otherModel.getMessage());
    }
}
