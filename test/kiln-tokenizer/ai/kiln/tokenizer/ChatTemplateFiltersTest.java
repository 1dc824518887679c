package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Jinja2 filters that released chat templates use and Jinjava lacks: items (Llama 3.1 and 3.3's
 * tool calls), max and min; the expected text is what Jinja2 renders for the same template.
 */
class ChatTemplateFiltersTest {

    static String render(String template, Map<String, Object> extra) {
        ChatTemplate t = new ChatTemplate(template, "test template", TokenizerConfig.EMPTY);
        return t.render(List.of(Map.of("role", "user", "content", "hi")), false, extra);
    }

    @Test
    void stringsAreIterableAsInJinja2() {
        // Llama 3.1's tool results: a string is iterable in Jinja2, so it is printed through tojson.
        String template = "{%- if content is mapping or content is iterable %}{{- content | tojson }}"
                + "{%- else %}{{- content }}{%- endif %}";
        assertEquals("\"18 C\"", render(template, Map.of("content", "18 C")));
        assertEquals("[1, 2]", render(template, Map.of("content", List.of(1, 2))));
        assertEquals("{\"t\": 18}", render(template, Map.of("content", Map.of("t", 18))));
        assertEquals("18", render(template, Map.of("content", 18)));
    }

    @Test
    void itemsGivesAMappingsPairsInOrder() {
        Map<String, Object> arguments = new LinkedHashMap<>();
        arguments.put("location", "Paris");
        arguments.put("unit", "celsius");
        // The loop of Llama 3.1's built-in tool calls.
        String template = "{%- for arg_name, arg_val in arguments | items %}"
                + "{{- arg_name + '=\"' + arg_val + '\"' }}{%- if not loop.last %}{{- \", \" }}{%- endif %}{%- endfor %}";
        assertEquals("location=\"Paris\", unit=\"celsius\"", render(template, Map.of("arguments", arguments)));
        assertEquals("", render("{% for k, v in nothing | items %}{{ k }}{% endfor %}", new java.util.HashMap<>()));
    }

    @Test
    void maxAndMinCompareNumbersAndStringsAsJinjaDoes() {
        Map<String, Object> extra = Map.of("numbers", List.of(3, 1, 2), "words", List.of("b", "A", "c"),
                "people", List.of(Map.of("name", "x", "age", 30), Map.of("name", "y", "age", 20)));
        assertEquals("3 1", render("{{ numbers | max }} {{ numbers | min }}", extra));
        // Case-insensitive by default, as Jinja2's.
        assertEquals("c A", render("{{ words | max }} {{ words | min }}", extra));
        assertEquals("y", render("{{ (people | min(attribute='age')).name }}", extra));
    }

    @Test
    void mixedValuesAreATemplateErrorNotACrash() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> render("{{ mixed | max }}", Map.of("mixed", List.of(1, "a"))));
        assertTrue(e.getMessage().contains("max"), e.getMessage());
    }
}
