package ai.kiln.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.EngineOptions;
import ai.kiln.api.FinishReason;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.SamplingParams;
import ai.kiln.api.StructuredOutput;
import ai.kiln.grammar.Grammar;
import ai.kiln.grammar.Grammars;
import ai.kiln.grammar.ParseState;
import ai.kiln.testing.Fixtures;
import ai.kiln.testing.SchemaValidation;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * Every output of a constrained request is valid: over generated JSON schemas (the supported
 * subset: objects with required and optional members and additionalProperties false, strings with
 * lengths, patterns, formats and enums, numbers and integers (with bounds), booleans, null, consts, arrays with item
 * schemas and bounds, anyOf, type lists, $ref into $defs), the random-weight llama3-gqa fixture
 * generates greedy and sampled completions; each one that finishes with "stop" is validated
 * against its schema by an independent validator (networknt), and each cut off with "length" is
 * a prefix the schema's grammar can still complete.
 */
class StructuredOutputPropertiesTest {

    static final ObjectMapper JSON = new ObjectMapper();
    static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    static final String[] NAMES = {"id", "name", "a b", "ünï", "x\"y", "tags", "v", "nested"};
    static final String[] PATTERNS = {"[a-z]{1,4}", "(ab|cd)+x?", "\\d{2}-\\d{2}", "[A-F0-9]{3}", "é?[^\"\\\\]{2}"};
    static final String[] FORMATS = {"date", "time", "date-time", "uuid", "ipv4", "hostname", "email"};
    static final AtomicInteger completions = new AtomicInteger();
    static final AtomicInteger stopped = new AtomicInteger();
    static LocalEngine engine;

    @BeforeContainer
    static void open() {
        engine = LocalEngine.create(Fixtures.named("llama3-gqa").dir(),
                EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(512).build());
    }

    @AfterContainer
    static void close() {
        engine.close();
        assertTrue(stopped.get() * 2 >= completions.get(),
                "most outputs complete within max_tokens: " + stopped + " of " + completions);
    }

    @Provide
    Arbitrary<String> schemas() {
        return Arbitraries.randomValue(random -> {
            ObjectNode defs = NODES.objectNode();
            JsonNode root = random.nextInt(10) < 7 ? object(random, 2, defs) : schema(random, 2, defs);
            ObjectNode top = root.isObject() ? ((ObjectNode) root).deepCopy() : NODES.objectNode();
            if (!defs.isEmpty()) {
                if (top.has("$ref")) {
                    // $ref takes no siblings here: wrap it.
                    ObjectNode wrapped = NODES.objectNode();
                    wrapped.set("anyOf", NODES.arrayNode().add(top));
                    top = wrapped;
                }
                top.set("$defs", defs);
            }
            return top.toString();
        });
    }

    @Property(tries = 60)
    void everyCompletedOutputIsValidAgainstItsSchema(@ForAll("schemas") String schema,
            @ForAll("temperatures") double temperature, @ForAll long seed) {
        SamplingParams params = SamplingParams.builder().n(3).temperature(temperature).seed(seed).maxTokens(120)
                .structuredOutput(StructuredOutput.jsonSchema(schema)).build();
        GenerateResult result = engine.generate(GenerateRequest.of("Answer in JSON:", params));
        Grammar grammar = Grammars.jsonSchema(schema);
        for (GenerateResult.Completion c : result.completions()) {
            completions.incrementAndGet();
            if (c.finishReason() == FinishReason.STOP) {
                stopped.incrementAndGet();
                assertEquals(List.of(), SchemaValidation.problems(schema, c.text()), () -> c.text() + " for " + schema);
            } else {
                assertEquals(FinishReason.LENGTH, c.finishReason());
                assertEquals(120, c.tokenIds().length);
                // NOTE: the bytes of the tokens, not the text: a cut can fall inside a character (shown as U+FFFD).
                assertTrue(isPrefix(grammar, tokenBytes(c.tokenIds())), () -> c.text() + " for " + schema);
            }
        }
    }

    @Provide
    Arbitrary<Double> temperatures() {
        return Arbitraries.of(0.0, 0.7, 1.0, 1.5);
    }

    static byte[] tokenBytes(int[] ids) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int id : ids) {
            out.writeBytes(engine.tokenizer().tokenBytes(id));
        }
        return out.toByteArray();
    }

    static boolean isPrefix(Grammar g, byte[] bytes) {
        ParseState s = g.initialState();
        for (byte b : bytes) {
            if (s.live().length == 0) {
                return false;
            }
            s = g.advance(s, b & 0xFF);
        }
        return !s.isDead();
    }

    // ---- the schema generator ---------------------------------------------------------------

    static JsonNode schema(Random r, int depth, ObjectNode defs) {
        int kinds = depth > 0 ? 15 : 10;
        ObjectNode s = NODES.objectNode();
        switch (r.nextInt(kinds)) {
            case 0 -> {
                s.put("type", "integer");
                if (r.nextBoolean()) {
                    long lo = r.nextInt(2001) - 1000;
                    s.put(r.nextBoolean() ? "minimum" : "exclusiveMinimum", lo);
                    if (r.nextBoolean()) {
                        s.put(r.nextBoolean() ? "maximum" : "exclusiveMaximum", lo + 2 + r.nextInt(5000));
                    }
                }
            }
            case 1 -> {
                s.put("type", "number");
                if (r.nextBoolean()) {
                    long lo = r.nextInt(21) - 10;
                    s.put(r.nextBoolean() ? "minimum" : "exclusiveMinimum", lo);
                    if (r.nextBoolean()) {
                        s.put(r.nextBoolean() ? "maximum" : "exclusiveMaximum", lo + 1 + r.nextInt(20));
                    }
                }
            }
            case 2 -> s.put("type", "boolean");
            case 3 -> s.put("type", "null");
            case 4 -> {
                int max = r.nextInt(6);
                s.put("type", "string").put("maxLength", max);
                if (r.nextBoolean()) {
                    s.put("minLength", r.nextInt(max + 1));
                }
            }
            case 5 -> s.put("type", "string").put("pattern", PATTERNS[r.nextInt(PATTERNS.length)]);
            case 6 -> {
                ArrayNode values = s.putArray("enum");
                int n = 1 + r.nextInt(3);
                for (int i = 0; i < n; i++) {
                    values.add(scalar(r));
                }
            }
            case 7 -> s.set("const", r.nextBoolean() ? scalar(r) : NODES.objectNode().put("k", r.nextInt(9)).set("l",
                    NODES.arrayNode().add(true).add("s")));
            case 8 -> {
                if (r.nextBoolean()) {
                    s.put("type", "string").putArray("enum").add("alpha").add("b\"e\\ta").add("ñ");
                } else {
                    s.put("type", "string").put("format", FORMATS[r.nextInt(FORMATS.length)]);
                }
            }
            case 9 -> s.putArray("type").add(r.nextBoolean() ? "integer" : "boolean").add("null");
            case 10, 11 -> {
                return object(r, depth - 1, defs);
            }
            case 12 -> {
                int max = r.nextInt(4);
                s.put("type", "array").set("items", schema(r, depth - 1, defs));
                s.put("maxItems", max);
                if (r.nextBoolean()) {
                    s.put("minItems", r.nextInt(max + 1));
                }
            }
            case 13 -> s.putArray("anyOf").add(schema(r, depth - 1, defs)).add(schema(r, depth - 1, defs));
            default -> {
                JsonNode target = schema(r, depth - 1, defs); // first: it may take names of its own
                String name = "d" + defs.size();
                defs.set(name, target);
                s.put("$ref", "#/$defs/" + name);
            }
        }
        if (r.nextInt(4) == 0 && !s.has("$ref")) {
            s.put("description", "a generated schema");
        }
        return s;
    }

    static JsonNode object(Random r, int depth, ObjectNode defs) {
        ObjectNode s = NODES.objectNode().put("type", "object");
        ObjectNode properties = s.putObject("properties");
        List<String> names = new ArrayList<>(List.of(NAMES));
        java.util.Collections.shuffle(names, r);
        int n = 1 + r.nextInt(3);
        boolean strict = r.nextBoolean();
        ArrayNode required = NODES.arrayNode();
        for (int i = 0; i < n; i++) {
            properties.set(names.get(i), schema(r, depth, defs));
            if (strict || r.nextBoolean()) {
                required.add(names.get(i));
            }
        }
        if (!required.isEmpty()) {
            s.set("required", required);
        }
        if (strict || r.nextBoolean()) {
            s.put("additionalProperties", false);
        }
        return s;
    }

    static JsonNode scalar(Random r) {
        return switch (r.nextInt(6)) {
            case 0 -> NODES.numberNode(r.nextInt(2001) - 1000);
            case 1 -> NODES.numberNode(Math.round(r.nextGaussian() * 1000) / 100.0);
            case 2 -> NODES.booleanNode(r.nextBoolean());
            case 3 -> NODES.nullNode();
            case 4 -> NODES.textNode("q\"uo\\te\n" + r.nextInt(10));
            default -> NODES.textNode(List.of("x", "日本", "", "a b").get(r.nextInt(4)));
        };
    }
}
