package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Python semantics that chat templates rely on (expected values are what CPython 3.12 prints). */
class PythonHelpersTest {
    @Test
    void splitAndStrip() {
        assertEquals(List.of("a", "", "b", ""), PythonStrings.split("a,,b,", ",", -1));
        assertEquals(List.of("a", "b c "), PythonStrings.split("  a b c ", null, 1));
        assertEquals(List.of("a b", "c"), PythonStrings.rsplit("a b c", " ", 1));
        assertEquals(List.of(), PythonStrings.split(" \u3000 ", null, -1));
        assertEquals("think", PythonStrings.strip("\n\nthink\n", "\n", true, true));
        assertEquals("x", PythonStrings.strip("\u3000\u00a0x\u2028", null, true, true));
        assertEquals("b", PythonStrings.call("abc", "strip", new Object[] {"ac"}));
        assertEquals(true, PythonStrings.call("<tool_response>x", "startswith", new Object[] {Arrays.asList("<a>", "<tool_response>")}));
        assertEquals("a-b-c", PythonStrings.call("-", "join", new Object[] {List.of("a", "b", "c")}));
        assertEquals("x_y z", PythonStrings.call("x y z", "replace", new Object[] {" ", "_", 1}));
    }

    @Test
    void jsonDumpsFormatting() {
        Map<String, Object> value = new LinkedHashMap<>();
        value.put("b", Arrays.asList(true, null, 1.5, 1e16, 0.0001, 1e-5, 3));
        value.put("a", "é\"\n\u0001");
        PythonJson.Options defaults = PythonJson.Options.of(false, null, null, false);
        assertEquals("{\"b\": [true, null, 1.5, 1e+16, 0.0001, 1e-05, 3], \"a\": \"é\\\"\\n\\u0001\"}", PythonJson.dumps(value, defaults));
        assertEquals("{\n  \"a\": \"\\u00e9\\\"\\n\\u0001\",\n  \"b\": []\n}",
                PythonJson.dumps(Map.of("b", List.of(), "a", "é\"\n\u0001"), PythonJson.Options.of(true, 2, null, true)));
        assertEquals("100.0", PythonJson.floatRepr(100.0));
        assertEquals("1234567890123456.0", PythonJson.floatRepr(1234567890123456.0));
    }

    @Test
    void printedValues() {
        assertEquals("True", PythonValues.str(true));
        assertEquals("[1, 'a', None, {'k': \"it's\"}]", PythonValues.str(Arrays.asList(1, "a", null, Map.of("k", "it's"))));
        assertEquals("", PythonValues.str(null));
    }
}
