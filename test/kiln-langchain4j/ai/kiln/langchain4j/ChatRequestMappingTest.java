package ai.kiln.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import ai.kiln.api.StructuredOutput;
import ai.kiln.api.ToolCallFormat;
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

        GenerateRequest request = ChatRequestMapping.toGenerateRequest(chat, "m", "req-1", ToolCallFormat.LLAMA3_JSON);

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

        SamplingParams sampling = ChatRequestMapping.toSamplingParams(parameters, ToolCallFormat.LLAMA3_JSON);

        SamplingParams expected = SamplingParams.builder().temperature(0.25).topP(0.5).topK(7)
                .frequencyPenalty(0.75).presencePenalty(-0.5).maxTokens(33).stop("END", "STOP").build();
        assertEquals(expected, sampling);
    }

    @Test
    void unsetParametersKeepKilnsDefaultsButAnUnsetBudgetMeansTheContextLength() {
        SamplingParams sampling = ChatRequestMapping.toSamplingParams(ChatRequestParameters.builder().build(),
                ToolCallFormat.LLAMA3_JSON);

        assertEquals(SamplingParams.builder().maxTokens(null).build(), sampling);
        assertNull(sampling.maxTokens());
    }

    @Test
    void outOfRangeValuesAreInvalidRequestsNamingTheField() {
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> ChatRequestMapping.toSamplingParams(ChatRequestParameters.builder().topP(1.5).build(),
                        ToolCallFormat.LLAMA3_JSON));
        assertEquals("invalid chat request parameters for Kiln: top_p must be in (0, 1], got 1.5", e.getMessage());
    }

    @Test
    void aRequestForAnotherModelIsRefused() {
        ChatRequest chat = ChatRequest.builder().messages(UserMessage.from("Hi")).modelName("gpt-4o").build();

        ModelNotFoundException e = assertThrows(ModelNotFoundException.class,
                () -> ChatRequestMapping.toGenerateRequest(chat, "llama3-gqa", "req-1", ToolCallFormat.LLAMA3_JSON));
        assertEquals("model 'gpt-4o' is not served here: this Kiln engine runs 'llama3-gqa' only", e.getMessage());
    }

    @Test
    void toolSpecificationsReachTheTemplateAsHuggingFaceToolsUnlessTheChoiceIsNone() {
        ToolSpecification weather = ToolSpecification.builder().name("get_weather").description("Current weather")
                .parameters(JsonObjectSchema.builder().addStringProperty("city").required("city").build()).build();
        ChatRequest chat = ChatRequest.builder().messages(UserMessage.from("Weather in Paris?"))
                .toolSpecifications(weather).build();

        GenerateRequest request = ChatRequestMapping.toGenerateRequest(chat, "m", "req-1", ToolCallFormat.LLAMA3_JSON);

        Map<String, Object> function = new LinkedHashMap<>();
        function.put("name", "get_weather");
        function.put("description", "Current weather");
        function.put("parameters", Map.of("type", "object", "properties", Map.of("city", Map.of("type", "string")),
                "required", List.of("city")));
        assertEquals(Map.of("tools", List.of(Map.of("type", "function", "function", function))),
                request.templateVariables());
        assertNull(request.params().structuredOutput(), "AUTO leaves the output free");
        ChatRequest none = chat.toBuilder().parameters(chat.parameters().overrideWith(
                ChatRequestParameters.builder().toolChoice(ToolChoice.NONE).build())).build();
        assertEquals(Map.of(), ChatRequestMapping.toGenerateRequest(none, "m", "req-2", ToolCallFormat.LLAMA3_JSON)
                .templateVariables());
    }

    @Test
    void requiredToolChoiceConstrainsTheOutputToOneCallInTheTemplatesFormat() {
        ChatRequestParameters parameters = ChatRequestParameters.builder().toolChoice(ToolChoice.REQUIRED)
                .toolSpecifications(ToolSpecification.builder().name("now").build(),
                        ToolSpecification.builder().name("get_weather")
                                .parameters(JsonObjectSchema.builder().addStringProperty("city").build()).build())
                .build();

        String now = "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"now\"},"
                + "\"arguments\":{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}},"
                + "\"required\":[\"name\",\"arguments\"],\"additionalProperties\":false}";
        String weather = "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"get_weather\"},"
                + "\"arguments\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}},"
                + "\"required\":[\"name\",\"arguments\"],\"additionalProperties\":false}";
        assertEquals(StructuredOutput.delimitedJsonSchema("<tool_call>\n", "{\"anyOf\":[" + now + "," + weather + "]}",
                "\n</tool_call>"), ChatRequestMapping.toSamplingParams(parameters, ToolCallFormat.HERMES).structuredOutput());
    }

    @Test
    void requiredToolChoiceWithoutToolsOrWithAJsonFormatIsAnInvalidRequest() {
        ChatRequest withoutTools = ChatRequest.builder().messages(UserMessage.from("Hi"))
                .toolChoice(ToolChoice.REQUIRED).build();
        assertThrows(InvalidRequestException.class, () -> ChatRequestMapping.toGenerateRequest(withoutTools, "m",
                "req-1", ToolCallFormat.LLAMA3_JSON));
        InvalidRequestException both = assertThrows(InvalidRequestException.class,
                () -> ChatRequestMapping.toSamplingParams(ChatRequestParameters.builder().toolChoice(ToolChoice.REQUIRED)
                        .toolSpecifications(ToolSpecification.builder().name("now").build())
                        .responseFormat(ResponseFormat.JSON).build(), ToolCallFormat.LLAMA3_JSON));
        assertTrue(both.getMessage().contains("cannot both constrain"), both.getMessage());
    }

    @Test
    void jsonResponseFormatsBecomeTheOutputsConstraintAndTextLeavesItFree() {
        JsonSchema schema = JsonSchema.builder().name("answer")
                .rootElement(JsonObjectSchema.builder().addStringProperty("city")
                        .addEnumProperty("unit", List.of("celsius", "fahrenheit")).required("city").build())
                .build();

        assertEquals(StructuredOutput.jsonSchema("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
                + "\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]}},\"required\":[\"city\"]}"),
                ChatRequestMapping.toSamplingParams(ChatRequestParameters.builder().responseFormat(schema).build(),
                        ToolCallFormat.LLAMA3_JSON).structuredOutput());
        assertEquals(StructuredOutput.jsonObject(), ChatRequestMapping.toSamplingParams(
                ChatRequestParameters.builder().responseFormat(ResponseFormat.JSON).build(), ToolCallFormat.LLAMA3_JSON)
                .structuredOutput());
        assertEquals(SamplingParams.builder().maxTokens(null).build(), ChatRequestMapping.toSamplingParams(
                ChatRequestParameters.builder().responseFormat(ResponseFormat.TEXT).build(), ToolCallFormat.LLAMA3_JSON));
    }

    @Test
    void toolCallsAndTheirResultsReachTheTemplateAsTheServerPassesThem() {
        ToolExecutionRequest call = ToolExecutionRequest.builder().id("call-1").name("get_weather")
                .arguments("{\"city\":\"Paris\"}").build();

        List<Map<String, Object>> messages = ChatRequestMapping.toEngineMessages(
                List.of(UserMessage.from("Weather?"), AiMessage.from(call), ToolExecutionResultMessage.from(call, "sunny")));

        Map<String, Object> function = new LinkedHashMap<>();
        function.put("name", "get_weather");
        function.put("arguments", Map.of("city", "Paris"));
        assertEquals(List.of(Map.of("role", "user", "content", "Weather?"),
                Map.of("role", "assistant", "content", "", "tool_calls",
                        List.of(Map.of("id", "call-1", "type", "function", "function", function))),
                Map.of("role", "tool", "content", "sunny", "tool_call_id", "call-1")), messages);
        ToolExecutionRequest notAnObject = call.toBuilder().arguments("[1]").build();
        assertThrows(InvalidRequestException.class,
                () -> ChatRequestMapping.toEngineMessages(List.of(AiMessage.from(notAnObject))));
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
