package ai.kiln.springai;

import static org.assertj.core.api.Assertions.assertThat;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.client.AdvisorParams;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;

/**
 * An output schema constrains {@link KilnChatModel}'s reply through the engine's grammar, so that
 * even the random-weight fixture answers JSON the schema accepts. The schemas are finite (enums
 * and booleans), so that every reply is complete within its budget.
 */
class KilnStructuredOutputTest {

    enum Unit {
        CELSIUS, FAHRENHEIT
    }

    record Forecast(Unit unit, boolean raining) {
    }

    private static Engine engine;
    private static KilnChatModel model;

    @BeforeAll
    static void startEngine() {
        engine = Engine.create(TestModels.llama3(), EngineOptions.builder().device("cpu").kvCacheBytes(16L << 20).build());
        model = KilnChatModel.builder().engine(engine).modelName("llama3")
                .defaultOptions(KilnChatOptions.builder().temperature(0.0).maxTokens(64).build()).build();
    }

    @AfterAll
    static void closeEngine() {
        engine.close();
    }

    @Test
    void anOutputSchemaMakesTheReplyJsonTheSchemaAccepts() throws Exception {
        String schema = "{\"type\":\"object\",\"properties\":{\"unit\":{\"enum\":[\"celsius\",\"fahrenheit\"]},"
                + "\"raining\":{\"type\":\"boolean\"}},\"required\":[\"unit\",\"raining\"],\"additionalProperties\":false}";

        ChatResponse response = model.call(new Prompt("Weather in Paris?",
                KilnChatOptions.builder().outputSchema(schema).build()));

        assertThat(response.getResult().getMetadata().getFinishReason()).isEqualTo("STOP");
        JsonNode reply = new ObjectMapper().readTree(response.getResult().getOutput().getText());
        assertThat(reply.properties().stream().map(Map.Entry::getKey).toList()).containsExactly("unit", "raining");
        assertThat(reply.get("unit").textValue()).isIn("celsius", "fahrenheit");
        assertThat(reply.get("raining").isBoolean()).isTrue();
    }

    @Test
    void aChatClientsNativeStructuredOutputReachesTheGrammarAndTheEntityIsRead() {
        Forecast forecast = ChatClient.create(model).prompt().user("Weather in Paris?")
                .advisors(AdvisorParams.ENABLE_NATIVE_STRUCTURED_OUTPUT)
                .call().entity(Forecast.class);

        assertThat(forecast).isNotNull();
        assertThat(forecast.unit()).isIn(List.of(Unit.values()));
    }

    @Test
    void fromCarriesAnOutputSchemaAndWithoutOneTheReplyIsFree() {
        assertThat(KilnChatOptions.builder().build().toSamplingParams().structuredOutput()).isNull();
        assertThat(KilnChatOptions.from(KilnChatOptions.builder().outputSchema("{}").build()).getOutputSchema())
                .isEqualTo("{}");
    }
}
