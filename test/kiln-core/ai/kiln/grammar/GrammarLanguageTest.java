package ai.kiln.grammar;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What the compiled grammars accept, byte by byte, on hand-written texts: JSON schemas (objects,
 * optional members, arrays with bounds, strings with lengths and patterns, enums, anyOf, $ref and
 * recursion), any JSON object, regular expressions and choices; and the messages of the schemas
 * and patterns refused.
 */
class GrammarLanguageTest {

    /** Whether the grammar takes the whole text as a complete sentence. */
    static boolean matches(Grammar g, String text) {
        ParseState s = g.initialState();
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            if (s.live().length == 0) {
                return false;
            }
            s = g.advance(s, b & 0xFF);
        }
        return s.complete();
    }

    /** Whether the text can still be continued into a sentence. */
    static boolean isPrefix(Grammar g, String text) {
        ParseState s = g.initialState();
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            if (s.live().length == 0) {
                return false;
            }
            s = g.advance(s, b & 0xFF);
        }
        return !s.isDead();
    }

    static Grammar schema(String json) {
        return Grammars.jsonSchema(json);
    }

    @Test
    void anObjectWithRequiredAndOptionalMembersInOrder() {
        Grammar g = schema("""
                {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"},
                 "c": {"type": "boolean"}}, "required": ["b"], "additionalProperties": false}""");
        assertTrue(matches(g, "{\"b\":\"x\"}"));
        assertTrue(matches(g, "{\"a\": 12, \"b\": \"\", \"c\": true}"));
        assertTrue(matches(g, "{\"a\":-3,\"b\":\"q\"}"));
        assertTrue(matches(g, "{\"b\":\"x\", \"c\":false}"));
        assertFalse(matches(g, "{}"), "b is required");
        assertFalse(matches(g, "{\"a\":1}"));
        assertFalse(matches(g, "{\"b\":\"x\",\"a\":1}"), "members come in the order of properties");
        assertFalse(matches(g, "{\"b\":\"x\",}"));
        assertFalse(matches(g, "{\"a\":01,\"b\":\"x\"}"), "no leading zeros");
        assertFalse(matches(g, "{\"b\":\"x\",\"d\":1}"), "no other members");
        assertTrue(isPrefix(g, "{\"a\": 1"));
        assertFalse(isPrefix(g, "{\"a\": 1}"));
    }

    @Test
    void allOptionalMembersMayAllBeLeftOut() {
        Grammar g = schema("""
                {"type": "object", "properties": {"x": {"type": "null"}, "y": {"type": "number"}}}""");
        assertTrue(matches(g, "{}"));
        assertTrue(matches(g, "{\"y\":1.5e-3}"));
        assertTrue(matches(g, "{\"x\":null,\"y\":0}"));
        assertFalse(matches(g, "{,\"y\":0}"));
    }

    @Test
    void stringsEscapeWhatJsonMustAndCountCodePoints() {
        Grammar g = schema("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 3}");
        assertTrue(matches(g, "\"ab\""));
        assertTrue(matches(g, "\"a\\\"b\""), "an escape is one character");
        assertTrue(matches(g, "\"é€😀\""), "three code points of 2, 3 and 4 bytes");
        assertTrue(matches(g, "\"\\u00e9x\""));
        assertFalse(matches(g, "\"a\""));
        assertFalse(matches(g, "\"abcd\""));
        assertFalse(matches(g, "\"a\nb\""), "a raw control character");
        assertFalse(matches(g, "\"\\ud83d\\ude00\""), "surrogate escapes are not written");
        Grammar any = schema("{\"type\": \"string\"}");
        assertTrue(matches(any, "\"\""));
        assertTrue(matches(any, "\"tab\\tquote\\\" slash\\/\""));
        assertFalse(matches(any, "\"bad \\x\""));
        assertFalse(isPrefix(any, "\"\u0001"));
    }

    @Test
    void patternsMatchTheWholeStringInsideItsQuotes() {
        Grammar g = schema("{\"type\": \"string\", \"pattern\": \"^[a-c]+-\\\\d{2}$\"}");
        assertTrue(matches(g, "\"abc-12\""));
        assertFalse(matches(g, "\"abc-1\""));
        assertFalse(matches(g, "\"xabc-12\""));
        Grammar quote = schema("{\"type\": \"string\", \"pattern\": \"a\\\"b|[\\\\n]\"}");
        assertTrue(matches(quote, "\"a\\\"b\""), "the quote is written escaped");
        assertTrue(matches(quote, "\"\\n\""));
        assertFalse(matches(quote, "\"a\"b\""));
    }

    @Test
    void arraysWithItemSchemasAndBounds() {
        Grammar g = schema("{\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"minItems\": 1, \"maxItems\": 3}");
        assertTrue(matches(g, "[1]"));
        assertTrue(matches(g, "[1, 2,3]"));
        assertFalse(matches(g, "[]"));
        assertFalse(matches(g, "[1,2,3,4]"));
        assertFalse(matches(g, "[1,]"));
        Grammar atLeastTwo = schema("{\"type\": \"array\", \"items\": {\"enum\": [\"x\", 7]}, \"minItems\": 2}");
        assertTrue(matches(atLeastTwo, "[\"x\",7,7,\"x\"]"));
        assertFalse(matches(atLeastTwo, "[7]"));
        Grammar any = schema("{\"type\": \"array\"}");
        assertTrue(matches(any, "[]"));
        assertTrue(matches(any, "[{\"k\": [null, true]}, \"s\", -0.5]"));
    }

    @Test
    void tuplesWithPrefixItemsAndTheirRest() {
        Grammar pair = schema("""
                {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false,
                 "minItems": 2}""");
        assertTrue(matches(pair, "[\"a\", 1]"));
        assertFalse(matches(pair, "[\"a\"]"));
        assertFalse(matches(pair, "[\"a\",1,2]"));
        assertFalse(matches(pair, "[1,\"a\"]"));
        Grammar headed = schema("""
                {"prefixItems": [{"const": "x"}], "items": {"type": "boolean"}}""");
        assertTrue(matches(headed, "[]"), "prefixItems do not require the items");
        assertTrue(matches(headed, "[\"x\"]"));
        assertTrue(matches(headed, "[\"x\",true, false]"));
        assertFalse(matches(headed, "[\"y\"]"));
        assertFalse(matches(headed, "[\"x\",1]"));
        Grammar bounded = schema("""
                {"type": "array", "prefixItems": [{"type": "null"}, {"type": "null"}], "maxItems": 3}""");
        assertTrue(matches(bounded, "[null,null,{\"k\": 1}]"));
        assertFalse(matches(bounded, "[null,null,1,2]"));
        assertTrue(matches(schema("{\"type\": \"array\", \"items\": false}"), "[]"));
        assertFalse(matches(schema("{\"type\": \"array\", \"items\": false}"), "[1]"));
        assertEquals("schema #: 'maxItems' 1 is below 'minItems' 2 (with 'items': false, at most the 1 of"
                + " 'prefixItems')", assertThrows(GrammarException.class, () -> schema("""
                        {"prefixItems": [{}], "items": false, "minItems": 2}""")).getMessage());
    }

    @Test
    void oneOfWhereItsOptionsCannotMatchTheSameValue() {
        Grammar byType = schema("{\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}");
        assertTrue(matches(byType, "\"a\""));
        assertTrue(matches(byType, "3"));
        assertFalse(matches(byType, "true"));
        Grammar tagged = schema("""
                {"$defs": {
                   "a": {"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}},
                         "required": ["kind", "x"]},
                   "b": {"type": "object", "properties": {"kind": {"enum": ["b", "c"]}, "y": {"type": "string"}},
                         "required": ["kind", "y"]}},
                 "oneOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/b"}]}""");
        assertTrue(matches(tagged, "{\"kind\": \"a\", \"x\": 1}"));
        assertTrue(matches(tagged, "{\"kind\": \"c\", \"y\": \"s\"}"));
        assertFalse(matches(tagged, "{\"kind\": \"a\", \"y\": \"s\"}"));
        Grammar constants = schema("{\"oneOf\": [{\"enum\": [1, \"one\"]}, {\"const\": 2}, {\"type\": \"null\"}]}");
        assertTrue(matches(constants, "\"one\""));
        assertTrue(matches(constants, "null"));
        assertFalse(matches(constants, "3"));
        for (String overlapping : List.of("""
                {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]}""", """
                {"oneOf": [{"enum": [1, 2]}, {"enum": [2.0, 3]}]}""", """
                {"oneOf": [{"type": "number"}, {"type": "integer"}]}""", """
                {"oneOf": [{"type": "object", "properties": {"k": {"const": 1}}},
                           {"type": "object", "properties": {"k": {"const": 2}}}]}""")) {
            assertTrue(assertThrows(GrammarException.class, () -> schema(overlapping)).getMessage()
                    .contains("options 0 and 1 may match the same value"), overlapping);
        }
    }

    @Test
    void enumsConstsAnyOfAndTypeLists() {
        Grammar g = schema("""
                {"anyOf": [{"const": {"k": [1, "two"]}}, {"enum": ["a\\"b", null, 2.5]}, {"type": ["boolean", "null"]}]}""");
        assertTrue(matches(g, "{\"k\":[1,\"two\"]}"));
        assertTrue(matches(g, "\"a\\\"b\""));
        assertTrue(matches(g, "2.5"));
        assertTrue(matches(g, "null"));
        assertTrue(matches(g, "false"));
        assertFalse(matches(g, "\"a\""));
        assertFalse(matches(g, "{\"k\": [1, \"two\"]}"), "a const is written compactly");
    }

    @Test
    void referencesAndRecursion() {
        Grammar g = schema("""
                {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                  "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
                  "required": ["v", "next"], "additionalProperties": false}},
                 "$ref": "#/$defs/node"}""");
        assertTrue(matches(g, "{\"v\":1,\"next\":null}"));
        assertTrue(matches(g, "{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":3,\"next\":null}}}"));
        assertFalse(matches(g, "{\"v\":1,\"next\":{\"v\":2}}"));
        Grammar tree = schema("""
                {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}},
                 "required": ["children"], "additionalProperties": false}""");
        assertTrue(matches(tree, "{\"children\":[{\"children\":[]}, {\"children\":[{\"children\":[]}]}]}"));
    }

    @Test
    void anyJsonObjectAndMaps() {
        Grammar g = Grammars.jsonObject();
        assertTrue(matches(g, "{}"));
        assertTrue(matches(g, "{\"a\": {\"b\": [1, 2.5e+3, \"x\", true, false, null, {}]}, \"c\":\"\"}"));
        assertFalse(matches(g, "[]"), "json_object asks for an object");
        assertFalse(matches(g, "{\"a\" 1}"));
        assertFalse(matches(g, "{a:1}"));
        Grammar map = schema("{\"type\": \"object\", \"additionalProperties\": {\"type\": \"integer\"}}");
        assertTrue(matches(map, "{\"x\":1, \"y\": 2}"));
        assertFalse(matches(map, "{\"x\":\"1\"}"));
    }

    @Test
    void numberBoundsAcceptExactlyTheNumbersWithinThem() {
        String[][] bounds = {{"minimum", "0"}, {"exclusiveMinimum", "0"}, {"maximum", "0"}, {"exclusiveMaximum", "0"},
            {"minimum", "-2", "maximum", "3"}, {"exclusiveMinimum", "-2", "exclusiveMaximum", "3"},
            {"minimum", "1", "exclusiveMaximum", "2"}, {"exclusiveMinimum", "5"}, {"maximum", "-4"},
            {"minimum", "2", "maximum", "2"}, {"exclusiveMinimum", "-1", "exclusiveMaximum", "0"}};
        for (String[] b : bounds) {
            StringBuilder json = new StringBuilder("{\"type\": \"number\"");
            double lo = Double.NEGATIVE_INFINITY;
            double hi = Double.POSITIVE_INFINITY;
            boolean loExclusive = false;
            boolean hiExclusive = false;
            for (int k = 0; k < b.length; k += 2) {
                json.append(", \"").append(b[k]).append("\": ").append(b[k + 1]);
                double v = Double.parseDouble(b[k + 1]);
                if (b[k].endsWith("inimum")) {
                    lo = v;
                    loExclusive = b[k].startsWith("exclusive");
                } else {
                    hi = v;
                    hiExclusive = b[k].startsWith("exclusive");
                }
            }
            Grammar g = schema(json.append("}").toString());
            for (int q = -28; q <= 28; q++) {
                double x = q / 4.0;
                boolean inside = (loExclusive ? x > lo : x >= lo) && (hiExclusive ? x < hi : x <= hi);
                for (String text : spellings(x)) {
                    // NOTE: a negative zero is never written, inside the bounds or not.
                    assertEquals(inside && !(x == 0 && text.startsWith("-")), matches(g, text), text + " in " + json);
                }
            }
            assertFalse(matches(g, "1e2"), "no exponent when bounded");
        }
    }

    /** Ways JSON writes x (a multiple of 0.25): plain, with trailing zeros; a zero also as -0. */
    static List<String> spellings(double x) {
        java.math.BigDecimal d = java.math.BigDecimal.valueOf(x).stripTrailingZeros();
        String plain = d.scale() <= 0 ? d.toBigInteger().toString() : d.toPlainString();
        List<String> out = new java.util.ArrayList<>(List.of(plain, plain + (plain.contains(".") ? "00" : ".0")));
        if (x == 0) {
            out.add("-0");
            out.add("-0.0");
        }
        return out;
    }

    @Test
    void formatsAcceptOnlyValidValues() {
        Grammar date = schema("{\"type\": \"string\", \"format\": \"date\"}");
        assertTrue(matches(date, "\"2024-01-31\""));
        assertTrue(matches(date, "\"1999-11-30\""));
        assertFalse(matches(date, "\"2024-02-30\""));
        assertFalse(matches(date, "\"2024-04-31\""));
        assertFalse(matches(date, "\"2024-13-01\""));
        Grammar dateTime = schema("{\"format\": \"date-time\"}");
        assertTrue(matches(dateTime, "\"2024-05-06T23:59:59.123Z\""));
        assertTrue(matches(dateTime, "\"2024-05-06T00:00:00+05:30\""));
        assertFalse(matches(dateTime, "\"2024-05-06T24:00:00Z\""));
        assertFalse(matches(dateTime, "\"2024-05-06 10:00:00Z\""));
        Grammar uuid = schema("{\"type\": \"string\", \"format\": \"uuid\"}");
        assertTrue(matches(uuid, "\"123e4567-e89b-12d3-a456-426614174000\""));
        assertFalse(matches(uuid, "\"123e4567e89b12d3a456426614174000\""));
        Grammar ip = schema("{\"type\": \"string\", \"format\": \"ipv4\"}");
        assertTrue(matches(ip, "\"255.0.10.9\""));
        assertFalse(matches(ip, "\"256.1.1.1\""));
        assertFalse(matches(ip, "\"01.1.1.1\""));
        Grammar email = schema("{\"type\": \"string\", \"format\": \"email\"}");
        assertTrue(matches(email, "\"first.last+tag@mail.example.org\""));
        assertFalse(matches(email, "\"first..last@example.org\""));
        assertFalse(matches(email, "\"nobody@localhost\""));
    }

    @Test
    void integerBoundsAcceptExactlyTheIntegersWithinThem() {
        long[][] ranges = {{0, 0}, {-7, 13}, {5, 1000}, {-1000, -10}, {99, 101}, {-1, 1}, {123, 456}};
        for (long[] range : ranges) {
            Grammar g = schema("{\"type\": \"integer\", \"minimum\": " + range[0] + ", \"maximum\": " + range[1] + "}");
            for (int i = -1200; i <= 1200; i++) {
                assertEquals(i >= range[0] && i <= range[1], matches(g, Integer.toString(i)), i + " in " + range[0]
                        + ".." + range[1]);
            }
            assertFalse(matches(g, "-0"));
            assertFalse(matches(g, "0" + Math.max(1, range[1])), "no leading zero");
        }
        Grammar atLeast = schema("{\"type\": \"integer\", \"exclusiveMinimum\": 4.5}");
        assertFalse(matches(atLeast, "4"));
        assertTrue(matches(atLeast, "5"));
        assertTrue(matches(atLeast, "123456789012345"));
        assertFalse(matches(atLeast, "-5"));
        Grammar below = schema("{\"type\": \"integer\", \"exclusiveMaximum\": -2}");
        assertTrue(matches(below, "-3"));
        assertTrue(matches(below, "-98765432109"));
        assertFalse(matches(below, "-2"));
        assertFalse(matches(below, "0"));
        Grammar huge = schema("{\"type\": \"integer\", \"minimum\": -1000000000000000000, \"maximum\": 999999999999999999}");
        assertTrue(matches(huge, "999999999999999999"));
        assertTrue(matches(huge, "-1000000000000000000"));
        assertFalse(matches(huge, "1000000000000000000"));
        assertTrue(huge.numStates() < 5000, "bounds of 18 digits stay small: " + huge.numStates());
    }

    @Test
    void aDelimitedSchemaIsTheOpeningThenTheJsonThenTheClosing() {
        Grammar g = Grammars.delimitedJsonSchema("<tool_call>\n", "{\"type\": \"object\", \"properties\":"
                + " {\"name\": {\"const\": \"f\"}}, \"required\": [\"name\"], \"additionalProperties\": false}",
                "\n</tool_call>");
        assertTrue(matches(g, "<tool_call>\n{\"name\": \"f\"}\n</tool_call>"));
        assertFalse(matches(g, "{\"name\": \"f\"}"), "the opening is required");
        assertFalse(matches(g, "<tool_call>\n{\"name\": \"f\"}"), "the closing is required");
        assertFalse(matches(g, "<tool_call>\n{\"name\": \"g\"}\n</tool_call>"), "the schema holds between them");
        assertFalse(isPrefix(g, "<tool_call>{"), "nothing may replace the opening's newline");
        Grammar bare = Grammars.delimitedJsonSchema("", "{\"type\": \"integer\"}", "");
        assertTrue(matches(bare, "12"));
        GrammarException e = assertThrows(GrammarException.class,
                () -> Grammars.delimitedJsonSchema("[", "{\"type\": \"integer\", \"multipleOf\": 2}", "]"));
        assertTrue(e.getMessage().contains("multipleOf"), e.getMessage());
    }

    @Test
    void regularExpressionsAndChoices() {
        Grammar g = Grammars.regex("(ab|c)*d{2,3}[^x\\d]?");
        assertTrue(matches(g, "dd"));
        assertTrue(matches(g, "abccabddd"));
        assertTrue(matches(g, "cddé"));
        assertFalse(matches(g, "cdddx"));
        assertFalse(matches(g, "cdd1"));
        assertFalse(matches(g, "d"));
        Grammar dot = Grammars.regex(".+");
        assertTrue(matches(dot, "日本"));
        assertFalse(matches(dot, "a\nb"));
        Grammar c = Grammars.choice(List.of("yes", "no", "yes!"));
        assertTrue(matches(c, "yes"));
        assertTrue(matches(c, "yes!"));
        assertFalse(matches(c, "ye"));
        assertFalse(matches(c, "maybe"));
    }

    @Test
    void badSchemasAreRefusedNamingTheProblemAndThePlace() {
        assertEquals("schema #/properties/age: the keyword 'multipleOf' is not supported",
                assertThrows(GrammarException.class, () -> schema("""
                        {"type": "object", "properties": {"age": {"type": "integer", "multipleOf": 2}}}""")).getMessage());
        assertEquals("schema #/minimum: bounds of type 'number' must be integers, got 0.5",
                assertThrows(GrammarException.class,
                        () -> schema("{\"type\": \"number\", \"minimum\": 0.5}")).getMessage());
        assertEquals("schema #: no number lies within its bounds", assertThrows(GrammarException.class,
                () -> schema("{\"type\": \"number\", \"minimum\": 2, \"exclusiveMaximum\": 2}")).getMessage());
        assertEquals("schema #: no integer lies within its bounds", assertThrows(GrammarException.class,
                () -> schema("{\"type\": \"integer\", \"minimum\": 3, \"exclusiveMaximum\": 3}")).getMessage());
        assertEquals("schema #/required: the required property 'b' has no schema in 'properties'",
                assertThrows(GrammarException.class, () -> schema("""
                        {"type": "object", "properties": {"a": {}}, "required": ["b"]}""")).getMessage());
        assertEquals("schema #/$ref: the reference '#/$defs/missing' names nothing in the schema",
                assertThrows(GrammarException.class, () -> schema("{\"$ref\": \"#/$defs/missing\"}")).getMessage());
        assertEquals("schema #/type: unknown type 'text'",
                assertThrows(GrammarException.class, () -> schema("{\"type\": \"text\"}")).getMessage());
        assertTrue(assertThrows(GrammarException.class, () -> schema("{\"type\": \"object\""))
                .getMessage().startsWith("the schema is not valid JSON"));
        assertEquals("the grammar matches no text (a schema with no finite value?)",
                assertThrows(GrammarException.class, () -> schema("""
                        {"type": "object", "properties": {"again": {"$ref": "#"}}, "required": ["again"]}""")).getMessage());
        assertEquals("schema #/properties/p/pattern: lookaround, inline flags and other '(?' groups are not supported"
                + " at offset 1 of the pattern", assertThrows(GrammarException.class, () -> schema("""
                        {"properties": {"p": {"type": "string", "pattern": "(?=a)"}}}""")).getMessage());
    }

    @Test
    void badPatternsAreRefusedWithTheirOffset() {
        assertEquals("regex: an unclosed '(' at offset 3 of the pattern",
                assertThrows(GrammarException.class, () -> Grammars.regex("(ab")).getMessage());
        assertEquals("regex: the escape \\1 is not supported at offset 4 of the pattern",
                assertThrows(GrammarException.class, () -> Grammars.regex("(a)\\1")).getMessage());
        assertEquals("regex: a quantifier with nothing to repeat at offset 0 of the pattern",
                assertThrows(GrammarException.class, () -> Grammars.regex("*a")).getMessage());
        assertEquals("regex: a repetition count over 1000 at offset 8 of the pattern",
                assertThrows(GrammarException.class, () -> Grammars.regex("a{1,5000}")).getMessage());
    }
}
