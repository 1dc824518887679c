package ai.kiln.fuzz;

import ai.kiln.testing.Fixtures;
import ai.kiln.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.lifecycle.AddLifecycleHook;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Chat templates, the fixtures' after text edits and ones assembled from Jinja pieces (loops,
 * conditions, macros that call themselves, filters known and unknown, comments, raw blocks,
 * Python methods, raise_exception, huge ranges and repetitions), rendered with a few messages.
 * Each render must give a prompt or an {@link IllegalArgumentException} that says what failed,
 * within the per-try limit: a template is model data, and must not hang or exhaust the server.
 */
@AddLifecycleHook(FuzzBudget.class)
class ChatTemplateFuzzTest {

    static final String TARGET = "chat-template";
    private static final List<Class<? extends Throwable>> DECLARED = List.of(IllegalArgumentException.class);
    /** Longer templates only slow a try down; the published ones are a few kilobytes. */
    private static final int MAX_TEMPLATE_CHARS = 4096;

    private static final List<String> SEEDS = List.of(
            fixture("llama3-gqa"), fixture("llama2-mha"),
            "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content.strip()"
                    + " + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
                    + "{%- endif %}");

    private static final String[] EXPRESSIONS = {
            "messages[0]['content']", "message['role']", "message.content", "bos_token", "eos_token", "loop.index",
            "messages|length", "'a' ~ 'b'", "range(5)", "x", "x * 3", "ns.n", "messages[::-1]", "messages[-1]",
            "not x is defined", "raise_exception('refused')", "strftime_now('%Y-%m-%d')", "messages|tojson",
            "(1 / 0)", "messages|map(attribute='role')|join(',')", "'%s and %d'|format('a', 1)", "'abc'.upper()",
            "message.content.split(' ')", "message.content.strip()", "[1, 2][5]", "{'a': 1}['b']",
            "range(100000000)", "'ab' * 1000000", "messages * 100000", "'x'|unknown_filter", "f(1)", "g()",
            "message.content|trim|lower", "message.content[1:3]", "none.attr", "undefined_name.x.y",
            "'é😀'|length", "add_generation_prompt and 'yes'", "messages[0].get('name', 'anon')", "1e308 * 10",
            "'%'|format", "message['content'] is string", "9999999999999999999999 + 1", "'a'.join(range(3))"};

    private static final String[] STATEMENTS = {
            "{% for message in messages %}", "{% endfor %}", "{% if EXPR %}", "{% elif EXPR %}", "{% else %}",
            "{% endif %}", "{% set x = EXPR %}", "{% set ns = namespace(n=messages|length - 1) %}",
            "{% set ns.n = ns.n + 1 %}", "{% macro f(a) %}{{ f(a) }}{% endmacro %}",
            "{% macro g() %}[{{ caller() if caller is defined else 'g' }}]{% endmacro %}",
            "{% filter upper %}", "{% endfilter %}", "{% filter nosuchfilter %}", "{% raw %}{{ x }}", "{% endraw %}",
            "{# comment #}", "{#- comment -#}", "{#", "#}", "{% break %}", "{% continue %}",
            "{% for m in messages if m.role == 'user' %}", "{% for i in range(3) %}{% for j in range(3) %}",
            "{% include 'other.jinja' %}", "{% extends 'base' %}", "{% import 'x' as y %}", "{% call g() %}",
            "{% endcall %}", "{%- ", " -%}", "{{- EXPR -}}", "{{ EXPR }}", "{{ EXPR", "EXPR }}", "{% ", " %}",
            "{{ '{{' }}", "text\n", "  \n", "\r\n"};

    /** What the template rewriting before Jinjava scans for: tag and comment edges, quotes, escapes. */
    private static final String[] DELIMITERS = {
            "{", "}", "%", "#", "-", "+", "'", "\"", "|", "(", ")", "[", "]", "~", ".", "\\", "{{", "}}", "{%", "%}",
            "{#", "#}", "{%-", "-%}", "[::-1]", "namespace(", " is ", "not ", " if ", " in ", "="};

    private static final Path SCRATCH = Fuzzing.scratchDirectory(TARGET);

    static {
        try {
            Files.writeString(SCRATCH.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\":"
                    + " {\"a\": 0, \"<s>\": 1, \"</s>\": 2}, \"merges\": []}}");
            Files.writeString(SCRATCH.resolve("tokenizer_config.json"),
                    "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String fixture(String model) {
        return new String(Fuzzing.read(Fixtures.ROOT.resolve(model).resolve("chat_template.jinja")),
                StandardCharsets.UTF_8);
    }

    @Property
    void mutatedTemplateRendersOrFails(@ForAll long seed, @ForAll @IntRange(min = 1, max = 6) int edits) {
        Random random = new Random(seed);
        StringBuilder template = new StringBuilder(SEEDS.get(random.nextInt(SEEDS.size())));
        for (int i = 0; i < edits; i++) {
            int at = random.nextInt(template.length() + 1);
            switch (random.nextInt(4)) {
                case 0 -> template.insert(at, piece(random));
                case 1 -> template.delete(at, Math.min(template.length(), at + 1 + random.nextInt(24)));
                case 2 -> template.insert(at, DELIMITERS[random.nextInt(DELIMITERS.length)]);
                default -> {
                    int from = random.nextInt(template.length() + 1);
                    int to = Math.min(template.length(), from + random.nextInt(64));
                    template.insert(at, template.substring(from, to));
                }
            }
        }
        check(capped(template), random);
    }

    @Property
    void generatedTemplateRendersOrFails(@ForAll long seed, @ForAll @IntRange(min = 1, max = 24) int pieces) {
        Random random = new Random(seed);
        StringBuilder template = new StringBuilder();
        for (int i = 0; i < pieces; i++) {
            template.append(piece(random));
        }
        check(capped(template), random);
    }

    @TestFactory
    Stream<DynamicTest> pastFindingsStillRenderOrFail() {
        return Fuzzing.corpus(TARGET).map(file -> DynamicTest.dynamicTest(file.getFileName().toString(),
                () -> check(new String(Fuzzing.read(file), StandardCharsets.UTF_8), new Random(0))));
    }

    private static String piece(Random random) {
        String piece = random.nextInt(3) == 0 ? "{{ EXPR }}" : STATEMENTS[random.nextInt(STATEMENTS.length)];
        while (piece.contains("EXPR")) {
            piece = piece.replaceFirst("EXPR", java.util.regex.Matcher.quoteReplacement(
                    EXPRESSIONS[random.nextInt(EXPRESSIONS.length)]));
        }
        return piece;
    }

    private static String capped(StringBuilder template) {
        return template.length() > MAX_TEMPLATE_CHARS ? template.substring(0, MAX_TEMPLATE_CHARS) : template.toString();
    }

    private static void check(String template, Random random) {
        // NOTE: an edit may split a surrogate pair; the file gets '?' for it, as any UTF-8 writer would.
        byte[] input = Fuzzing.utf8(template);
        try {
            Files.write(SCRATCH.resolve("chat_template.jinja"), input);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<Map<String, Object>> messages = messages(random);
        boolean addGenerationPrompt = random.nextBoolean();
        Fuzzing.check(TARGET, input, () -> Tokenizer.load(SCRATCH).applyChatTemplate(messages, addGenerationPrompt),
                Fuzzing.declared(DECLARED));
    }

    /** A short conversation; sometimes with a message lacking its content or carrying odd text. */
    private static List<Map<String, Object>> messages(Random random) {
        List<Map<String, Object>> messages = new ArrayList<>();
        messages.add(message("system", "Be brief."));
        messages.add(message("user", random.nextInt(4) == 0 ? Mutations.randomString(random, 20) : "Hi there"));
        messages.add(message("assistant", "Hello! {{ not a tag }} {% nor this %}"));
        if (random.nextInt(4) == 0) {
            Map<String, Object> odd = new LinkedHashMap<>();
            odd.put("role", "tool");
            if (random.nextBoolean()) {
                odd.put("content", List.of(Map.of("type", "text", "text", "part")));
            }
            messages.add(odd);
        }
        return messages;
    }

    private static Map<String, Object> message(String role, String content) {
        Map<String, Object> message = new LinkedHashMap<>();
        message.put("role", role);
        message.put("content", content);
        return message;
    }
}
