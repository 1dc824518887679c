package ai.kiln.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.EngineOptions;
import ai.kiln.api.FinishReason;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.SamplingParams;
import ai.kiln.api.StructuredOutput;
import ai.kiln.testing.Fixtures;
import ai.kiln.testing.SchemaValidation;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Structured output through the engine on the CPU backend with the llama3-gqa fixture, whose
 * random weights make noise of free text: the grammar alone makes each output valid. Greedy and
 * sampled, n > 1, several constrained requests in one batch with unconstrained ones, and the
 * finish reasons (stop once complete, length when max_tokens cuts it short).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class StructuredOutputEngineTest {

    static final ObjectMapper JSON = new ObjectMapper();
    static final String PERSON = """
            {"type": "object", "properties": {"name": {"type": "string", "maxLength": 6},
             "age": {"type": "integer"}, "pets": {"type": "array", "items": {"enum": ["cat", "dog"]}, "maxItems": 3},
             "nick": {"anyOf": [{"type": "string", "pattern": "[a-z]{2,4}"}, {"type": "null"}]}},
             "required": ["name", "age", "pets", "nick"], "additionalProperties": false}""";

    static LocalEngine engine;

    @BeforeAll
    static void open() {
        engine = LocalEngine.create(Fixtures.named("llama3-gqa").dir(),
                EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(512).build());
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    static SamplingParams.Builder constrained(StructuredOutput constraint, int maxTokens) {
        return SamplingParams.builder().maxTokens(maxTokens).structuredOutput(constraint);
    }

    @Test
    void greedyAndSampledOutputsOfASchemaAreValid() {
        StructuredOutput person = StructuredOutput.jsonSchema(PERSON);
        int stopped = 0;
        for (SamplingParams params : List.of(constrained(person, 200).temperature(0).build(),
                constrained(person, 200).n(6).seed(5L).build(),
                constrained(person, 200).n(6).seed(6L).temperature(1.5).topK(50).repetitionPenalty(1.2).build())) {
            GenerateResult r = engine.generate(GenerateRequest.of("Describe a person:", params));
            for (GenerateResult.Completion c : r.completions()) {
                if (c.finishReason() == FinishReason.STOP) {
                    stopped++;
                    assertEquals(List.of(), SchemaValidation.problems(PERSON, c.text()), c.text());
                } else {
                    assertEquals(FinishReason.LENGTH, c.finishReason());
                }
            }
        }
        assertTrue(stopped >= 8, "most of the 13 outputs complete within 200 tokens: " + stopped);
    }

    @Test
    void jsonObjectRegexAndChoiceOutputs() throws Exception {
        GenerateResult object = engine.generate(GenerateRequest.of("JSON:",
                constrained(StructuredOutput.jsonObject(), 64).n(4).seed(1L).build()));
        for (GenerateResult.Completion c : object.completions()) {
            assertTrue(c.text().startsWith("{"), c.text());
            if (c.finishReason() == FinishReason.STOP) {
                assertTrue(JSON.readTree(c.text()).isObject(), c.text());
            }
        }
        GenerateResult date = engine.generate(GenerateRequest.of("Date:",
                constrained(StructuredOutput.regex("\\d{4}-(0[1-9]|1[0-2])-[0-3]\\d"), 40).n(3).seed(2L).build()));
        for (GenerateResult.Completion c : date.completions()) {
            assertEquals(FinishReason.STOP, c.finishReason());
            assertTrue(c.text().matches("\\d{4}-(0[1-9]|1[0-2])-[0-3]\\d"), c.text());
        }
        List<String> choices = List.of("positive", "negative", "neutral");
        GenerateResult choice = engine.generate(GenerateRequest.of("Sentiment:",
                constrained(StructuredOutput.choice(choices), 40).n(5).seed(3L).build()));
        for (GenerateResult.Completion c : choice.completions()) {
            assertEquals(FinishReason.STOP, c.finishReason());
            assertTrue(choices.contains(c.text()), c.text());
        }
    }

    @Test
    void anOutputCutShortByMaxTokensEndsWithLength() {
        GenerateResult r = engine.generate(GenerateRequest.of("Person:",
                constrained(StructuredOutput.jsonSchema(PERSON), 3).temperature(0).build()));
        GenerateResult.Completion c = r.completions().get(0);
        assertEquals(FinishReason.LENGTH, c.finishReason());
        assertEquals(3, c.tokenIds().length);
        assertTrue(c.text().startsWith("{\""), c.text());
    }

    @Test
    void constrainedAndFreeRequestsShareABatch() {
        List<ai.kiln.api.RequestHandle> handles = new java.util.ArrayList<>();
        for (int i = 0; i < 6; i++) {
            SamplingParams p = i % 2 == 0
                    ? constrained(StructuredOutput.choice(List.of("red", "green", "blue")), 20).seed((long) i).build()
                    : SamplingParams.builder().maxTokens(20).seed((long) i).ignoreEos(true).build();
            handles.add(engine.submit(GenerateRequest.of("Colour " + i, p)));
        }
        for (int i = 0; i < handles.size(); i++) {
            GenerateResult.Completion c = handles.get(i).result().join().completions().get(0);
            if (i % 2 == 0) {
                assertTrue(List.of("red", "green", "blue").contains(c.text()), c.text());
                assertEquals(FinishReason.STOP, c.finishReason());
            } else {
                assertEquals(20, c.tokenIds().length, "the free request runs to max_tokens");
            }
        }
    }

    @Test
    void aCompiledGrammarIsReusedForTheSameConstraint() {
        GrammarCache cache = engine.grammars();
        StructuredOutput fresh = StructuredOutput.regex("[xyz]{3}");
        int before = cache.size();
        engine.generate(GenerateRequest.of("a", constrained(fresh, 8).build()));
        engine.generate(GenerateRequest.of("b", constrained(StructuredOutput.regex("[xyz]{3}"), 8).build()));
        assertEquals(before + 1, cache.size());
    }

    @Test
    void aBadSchemaIsRefusedAtSubmission() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> engine.submit(
                GenerateRequest.of("x", constrained(StructuredOutput.jsonSchema("{\"type\": \"string\", \"format\": \"duration\"}"), 8)
                        .build())));
        assertEquals("schema #/format: the format 'duration' is not supported (supported: [date, date-time, email,"
                + " hostname, ipv4, time, uuid])", e.getMessage());
    }
}
