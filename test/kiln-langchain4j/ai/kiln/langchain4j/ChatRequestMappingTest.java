package ai.kiln.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ImageContent;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.TextContent;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.ModelNotFoundException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.request.json.JsonSchema;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The mapping from LangChain4j's requests to the engine's, checked field by field without an engine. */
class ChatRequestMappingTest {

    @Test
    void mapsEveryRoleToTheTemplatesMessageMaps() {
        ChatRequest chat = ChatRequest.builder()
                .messages(SystemMessage.from("Be terse."), UserMessage.from("ann", "Hi"), AiMessage.from("Hello."),
                        UserMessage.from(TextContent.from("Two "), TextContent.from("parts")))
                .build();

        GenerateRequest request = ChatRequestMapping.toGenerateRequest(chat, "m", "req-1");

        Map<String, Object> named = new LinkedHashMap<>();
        named.put("role", "user");
        named.put("content", "Hi");
        named.put("name", "ann");
        assertEquals(List.of(Map.of("role", "system", "content", "Be terse."), named,
                Map.of("role", "assistant", "content", "Hello."), Map.of("role", "user", "content", "Two parts")),
                request.messages());
        assertEquals("req-1", request.requestId());
        assertEquals(false, request.stream());
    }

    @Test
    void mapsEveryCommonParameterToSamplingParams() {
        ChatRequestParameters parameters = ChatRequestParameters.builder()
                .temperature(0.25).topP(0.5).topK(7).frequencyPenalty(0.75).presencePenalty(-0.5)
                .maxOutputTokens(33).stopSequences("END", "STOP")
                .build();

        SamplingParams sampling = ChatRequestMapping.toSamplingParams(parameters);

        SamplingParams expected = SamplingParams.builder().temperature(0.25).topP(0.5).topK(7)
                .frequencyPenalty(0.75).presencePenalty(-0.5).maxTokens(33).stop("END", "STOP").build();
        assertEquals(expected, sampling);
    }

    @Test
    void unsetParametersKeepKilnsDefaultsButAnUnsetBudgetMeansTheContextLength() {
        SamplingParams sampling = ChatRequestMapping.toSamplingParams(ChatRequestParameters.builder().build());

        assertEquals(SamplingParams.builder().maxTokens(null).build(), sampling);
        assertNull(sampling.maxTokens());
    }

    @Test
    void outOfRangeValuesAreInvalidRequestsNamingTheField() {
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> ChatRequestMapping.toSamplingParams(ChatRequestParameters.builder().topP(1.5).build()));
        assertEquals("invalid chat request parameters for Kiln: top_p must be in (0, 1], got 1.5", e.getMessage());
    }

    @Test
    void aRequestForAnotherModelIsRefused() {
        ChatRequest chat = ChatRequest.builder().messages(UserMessage.from("Hi")).modelName("gpt-4o").build();

        ModelNotFoundException e = assertThrows(ModelNotFoundException.class,
                () -> ChatRequestMapping.toGenerateRequest(chat, "llama3-gqa", "req-1"));
        assertEquals("model 'gpt-4o' is not served here: this Kiln engine runs 'llama3-gqa' only", e.getMessage());
    }

    @Test
    void toolSpecificationsAreRefusedNamingTheTool() {
        ChatRequestParameters parameters = ChatRequestParameters.builder()
                .toolSpecifications(ToolSpecification.builder().name("get_weather").build())
                .build();

        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> ChatRequestMapping.toSamplingParams(parameters));
        assertEquals("Kiln does not support tools yet: the request has 1 tool specification(s) (get_weather);"
                + " remove them or use a provider with tool calling", e.getMessage());
    }

    @Test
    void requiredToolChoiceIsRefused() {
        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> ChatRequestMapping.toSamplingParams(
                        ChatRequestParameters.builder().toolChoice(ToolChoice.REQUIRED).build()));
        assertTrue(e.getMessage().contains("toolChoice REQUIRED"), e.getMessage());
    }

    @Test
    void jsonResponseFormatsAreRefusedAndTextIsAccepted() {
        JsonSchema schema = JsonSchema.builder().name("answer")
                .rootElement(JsonObjectSchema.builder().addStringProperty("city").build()).build();

        UnsupportedFeatureException withSchema = assertThrows(UnsupportedFeatureException.class,
                () -> ChatRequestMapping.toSamplingParams(ChatRequestParameters.builder().responseFormat(schema).build()));
        assertEquals("Kiln does not support structured output yet: responseFormat JSON with a JSON schema cannot be"
                + " enforced; only TEXT is supported", withSchema.getMessage());
        assertThrows(UnsupportedFeatureException.class, () -> ChatRequestMapping.toSamplingParams(
                ChatRequestParameters.builder().responseFormat(ResponseFormat.JSON).build()));
        assertEquals(SamplingParams.builder().maxTokens(null).build(), ChatRequestMapping.toSamplingParams(
                ChatRequestParameters.builder().responseFormat(ResponseFormat.TEXT).build()));
    }

    @Test
    void toolMessagesInTheConversationAreRefused() {
        ToolExecutionRequest call = ToolExecutionRequest.builder().id("call-1").name("get_weather").arguments("{}")
                .build();

        UnsupportedFeatureException aiCall = assertThrows(UnsupportedFeatureException.class,
                () -> ChatRequestMapping.toEngineMessages(List.of(UserMessage.from("Weather?"), AiMessage.from(call))));
        assertEquals("Kiln does not support tools yet: message 1 is an AI message with 1 tool execution request(s)",
                aiCall.getMessage());
        UnsupportedFeatureException result = assertThrows(UnsupportedFeatureException.class,
                () -> ChatRequestMapping.toEngineMessages(
                        List.of(ToolExecutionResultMessage.from(call, "sunny"))));
        assertEquals("Kiln does not support tools yet: message 0 is the result of tool 'get_weather'",
                result.getMessage());
    }

    @Test
    void nonTextContentIsRefused() {
        UserMessage withImage = UserMessage.from(TextContent.from("What is this?"),
                ImageContent.from("https://example.com/cat.png"));

        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> ChatRequestMapping.toEngineMessages(List.of(withImage)));
        assertEquals("Kiln models take text only: message 0 holds IMAGE content", e.getMessage());
    }
}
