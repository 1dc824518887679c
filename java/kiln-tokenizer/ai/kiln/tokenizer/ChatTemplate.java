package ai.kiln.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.MacroTagCycleException;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.objects.date.StrftimeFormatter;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jinjava.javax.el.CompositeELResolver;

/**
 * A Hugging Face chat template rendered with Jinjava, configured to behave like the Jinja2
 * environment of transformers' apply_chat_template: trim_blocks and lstrip_blocks, Python's
 * operator precedence and whitespace control, one trailing newline of the template dropped, line
 * endings normalized, transformers' {@code tojson} (Python json.dumps) and {@code raise_exception}
 * and {@code strftime_now}, Python str methods on strings, and Python's {@code str.strip()} for
 * {@code trim}, code points for {@code length}, strings iterable for {@code is iterable}. Where Jinjava reads a construct differently from
 * Jinja2, the template is rewritten before parsing: comments are removed with Jinja2's whitespace
 * rules; {@code seq[::-1]} becomes {@code seq|reverse}; the keyword arguments of
 * {@code namespace(...)} are parenthesized (Jinjava would apply the filter in
 * {@code n=messages|length - 1} to the whole argument); {@code not x is defined} becomes
 * {@code not (x is defined)}; the filter of {@code for x in items if cond} goes through a filter
 * of the items; and every {@code {{ value }}} prints Python's str() of the value (True, [1, 'a']).
 *
 * <p>Known differences from Jinja2, none used by the Llama 3 or Qwen 3 templates: the loop
 * controls {@code {% break %}} and {@code {% continue %}} are not supported (rendering fails with
 * "Unknown tag"); {@code loop.previtem} and {@code loop.nextitem} are undefined; printing None
 * gives "" rather than "None" (Jinjava cannot tell None from undefined); slices with a step other
 * than {@code [::-1]} are not supported; string slices count UTF-16 units, not code points;
 * Python type errors (adding a string and a list) render instead of failing.
 */
final class ChatTemplate {
    private static final Pattern REVERSE_SLICE = Pattern.compile("\\[\\s*:\\s*:\\s*-\\s*1\\s*]");
    private static final Pattern NAMESPACE_CALL = Pattern.compile("\\bnamespace\\s*\\(");
    private static final Pattern KEYWORD_ARGUMENT = Pattern.compile("^(\\s*[A-Za-z_][A-Za-z0-9_]*\\s*=)(?!=)(.*)$", Pattern.DOTALL);
    private static final Pattern END_RAW = Pattern.compile("\\{%[-+]?\\s*endraw\\s*[-+]?%}");
    private static final Pattern NOT_TEST = Pattern.compile(
            "\\bnot\\s+([A-Za-z_][A-Za-z0-9_]*(?:\\s*(?:\\.\\s*[A-Za-z_][A-Za-z0-9_]*|\\[[^\\[\\]]*]))*)"
                    + "\\s+is\\s+((?:not\\s+)?[A-Za-z_][A-Za-z0-9_]*(?:\\s*\\([^()]*\\))?)");
    private static final Pattern FILTER_NAME = Pattern.compile("\\s*([A-Za-z_][A-Za-z0-9_]*)");
    private static final Pattern FILTER_BLOCK = Pattern.compile("filter\\s+([A-Za-z_][A-Za-z0-9_]*)");
    /** Deeper macro recursion than this is a template error (Jinja2's limit is Python's stack). */
    private static final int MAX_MACRO_DEPTH = 100;
    private static final Pattern FOR_TAG = Pattern.compile("^(\\s*for\\s+)(.+?)(\\s+in\\s+)(.*)$", Pattern.DOTALL);

    private final String source;
    private final String template;
    private final TokenizerConfig config;
    private final Jinjava jinjava;

    ChatTemplate(String template, String source, TokenizerConfig config) {
        this.source = source;
        this.template = preprocess(template);
        this.config = config;
        LegacyOverrides python = LegacyOverrides.newBuilder()
                .withUseNaturalOperatorPrecedence(true)
                .withParseWhitespaceControlStrictly(true)
                .withUseTrimmingForNotesAndExpressions(true)
                .withEvaluateMapKeys(true)
                .withIterateOverMapKeys(true)
                .withKeepNullableLoopValues(true)
                .build();
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonMethodResolver());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        JinjavaConfig jinjavaConfig = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withLegacyOverrides(python)
                .withElResolver(resolver)
                .withFailOnUnknownTokens(false)
                // Jinja2 allows recursive macros (a JSON schema printer calls itself per nesting
                // level); one that never stops fails at this depth instead of rendering nothing.
                .withEnableRecursiveMacroCalls(true)
                .withMaxMacroRecursionDepth(MAX_MACRO_DEPTH)
                .build();
        jinjava = new Jinjava(jinjavaConfig);
        jinjava.getGlobalContext().registerFilter(new ToJsonFilter());
        jinjava.getGlobalContext().registerFilter(new TrimFilter());
        jinjava.getGlobalContext().registerFilter(new LengthFilter("length"));
        jinjava.getGlobalContext().registerFilter(new LengthFilter("count"));
        jinjava.getGlobalContext().registerFilter(new LoopIfFilter());
        jinjava.getGlobalContext().registerFilter(new CaseFilter("upper", true));
        jinjava.getGlobalContext().registerFilter(new CaseFilter("lower", false));
        // NOTE: Jinja2 filters that Jinjava lacks and released templates use (Llama 3.1 and 3.3's
        // tool calls iterate "arguments | items").
        jinjava.getGlobalContext().registerFilter(new ItemsFilter());
        jinjava.getGlobalContext().registerFilter(new ExtremumFilter("max", true));
        jinjava.getGlobalContext().registerFilter(new ExtremumFilter("min", false));
        // NOTE: Jinja2's "is iterable" holds for strings; Jinjava's does not, and Llama 3.1's
        // template prints a tool result through tojson exactly when it is iterable.
        jinjava.getGlobalContext().registerExpTest(new IterableTest());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                ChatTemplate.class, "raiseException", String.class));
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "kiln_str",
                PythonValues.class, "str", Object.class));
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                ChatTemplate.class, "strftimeNow", String.class));
        String unknown = firstUnknownFilter(template);
        if (unknown != null) {
            throw failure(unknown, null);
        }
    }

    /**
     * Jinja2 refuses a template that names a filter it does not have when it compiles it; Jinjava
     * would apply the missing filter as "nothing" and render an empty prompt. So every filter the
     * template names ("x | name", "{% filter name %}") is looked up first. Comments and raw
     * blocks are skipped, as are string literals inside tags; lines are counted in the source.
     *
     * @return "unknown filter 'name' (line N)" for the first missing one, or null
     */
    private String firstUnknownFilter(String source) {
        String text = source.replace("\r\n", "\n").replace('\r', '\n');
        int i = 0;
        while (i < text.length()) {
            if (text.startsWith("{#", i)) {
                int close = text.indexOf("#}", i + 2);
                i = close < 0 ? text.length() : close + 2;
                continue;
            }
            if (!text.startsWith("{%", i) && !text.startsWith("{{", i)) {
                i++;
                continue;
            }
            int end = endOfTag(text, i);
            String inside = text.substring(i + 2, Math.max(i + 2, end - 2));
            String statement = inside.replaceAll("^[-+]?\\s*", "");
            if (text.startsWith("{%", i) && statement.replaceAll("\\s*[-+]?$", "").equals("raw")) {
                Matcher endRaw = END_RAW.matcher(text);
                i = endRaw.find(end) ? endRaw.end() : text.length();
                continue;
            }
            List<String> names = new ArrayList<>();
            Matcher filterBlock = FILTER_BLOCK.matcher(statement);
            if (text.startsWith("{%", i) && filterBlock.lookingAt()) {
                names.add(filterBlock.group(1));
            }
            for (int j = 0; j < inside.length(); j++) {
                char c = inside.charAt(j);
                if (c == '\'' || c == '"') {
                    int close = endOfStringLiteral(inside, j);
                    j = close < 0 ? inside.length() : close;
                } else if (c == '|') {
                    Matcher name = FILTER_NAME.matcher(inside).region(j + 1, inside.length());
                    if (name.lookingAt()) {
                        names.add(name.group(1));
                    }
                }
            }
            for (String name : names) {
                if (jinjava.getGlobalContext().getFilter(name) == null) {
                    return "unknown filter '" + name + "' (line " + lineOf(text, i) + ")";
                }
            }
            i = end;
        }
        return null;
    }

    private static int lineOf(String text, int index) {
        int line = 1;
        for (int i = 0; i < index; i++) {
            if (text.charAt(i) == '\n') {
                line++;
            }
        }
        return line;
    }

    /** Jinja2's source handling plus the rewrites described in the class comment. */
    static String preprocess(String template) {
        // Jinja2 normalizes line endings and, without keep_trailing_newline, drops one final newline.
        String text = template.replace("\r\n", "\n").replace('\r', '\n');
        if (text.endsWith("\n")) {
            text = text.substring(0, text.length() - 1);
        }
        text = removeComments(text);
        text = REVERSE_SLICE.matcher(text).replaceAll("|reverse");
        text = parenthesizeNamespaceArguments(text);
        return rewriteTags(text);
    }

    /**
     * Rewrites inside tags what Jinjava parses differently from Jinja2: "not x is defined" (the
     * test binds tighter than "not" in Jinja2), "for x in items if condition" (Jinjava ignores
     * the filter), and prints every {@code {{ value }}} through Python's str() (True, [1, 'a']).
     */
    static String rewriteTags(String text) {
        StringBuilder out = new StringBuilder(text.length() + 64);
        int i = 0;
        while (i < text.length()) {
            boolean expression = text.startsWith("{{", i);
            if (!expression && !text.startsWith("{%", i)) {
                out.append(text.charAt(i++));
                continue;
            }
            int end = endOfTag(text, i);
            String tag = text.substring(i, end);
            int bodyStart = 2;
            if (tag.length() > 2 && (tag.charAt(2) == '-' || tag.charAt(2) == '+')) {
                bodyStart = 3;
            }
            int bodyEnd = Math.max(bodyStart, tag.length() - 2);
            if (bodyEnd > bodyStart && (tag.charAt(bodyEnd - 1) == '-' || tag.charAt(bodyEnd - 1) == '+')) {
                bodyEnd--;
            }
            String body = tag.substring(bodyStart, bodyEnd);
            if (!expression && body.trim().equals("raw")) {
                Matcher endRaw = END_RAW.matcher(text);
                int rawEnd = endRaw.find(end) ? endRaw.end() : text.length();
                out.append(text, i, rawEnd);
                i = rawEnd;
                continue;
            }
            body = NOT_TEST.matcher(body).replaceAll("not ($1 is $2)");
            if (expression) {
                // A function call, not "(...)|filter": Jinjava reads "({'a': 1, 'b': 2})" as a tuple.
                body = " kiln_str(" + body + ") ";
            } else {
                body = rewriteForIf(body);
            }
            out.append(tag, 0, bodyStart).append(body).append(tag, bodyEnd, tag.length());
            i = end;
        }
        return out.toString();
    }

    /** "for x in items if cond" becomes "for x in (items)|kiln_loop_if('x', 'cond')". */
    private static String rewriteForIf(String body) {
        Matcher forTag = FOR_TAG.matcher(body);
        if (!forTag.matches()) {
            return body;
        }
        String rest = forTag.group(4);
        int condition = firstTopLevelKeyword(rest, "if");
        if (condition < 0) {
            return body;
        }
        String iterable = rest.substring(0, condition).trim();
        String tail = rest.substring(condition + 2).trim();
        String recursive = "";
        if (tail.endsWith(" recursive")) {
            tail = tail.substring(0, tail.length() - " recursive".length()).trim();
            recursive = " recursive";
        }
        return forTag.group(1) + forTag.group(2) + forTag.group(3) + "(" + iterable + ")|kiln_loop_if('"
                + quoteForLiteral(forTag.group(2).trim()) + "', '" + quoteForLiteral(tail) + "')" + recursive + " ";
    }

    private static String quoteForLiteral(String text) {
        return text.replace("\\", "\\\\").replace("'", "\\'");
    }

    /**
     * Position of the first {@code keyword} surrounded by spaces outside strings and brackets, or
     * -1. Jinja2 does not allow a bare conditional expression as a loop's iterable, so the first
     * top-level "if" starts the loop filter.
     */
    private static int firstTopLevelKeyword(String text, String keyword) {
        int depth = 0;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '\'' || c == '"') {
                int end = endOfStringLiteral(text, i);
                i = end < 0 ? text.length() : end;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (depth == 0 && i > 0 && Character.isWhitespace(text.charAt(i - 1)) && text.startsWith(keyword, i)
                    && i + keyword.length() < text.length() && Character.isWhitespace(text.charAt(i + keyword.length()))) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Removes {@code {# comments #}} with Jinja2's whitespace rules, which Jinjava does not apply
     * to comments: "{#-" strips all whitespace before and "-#}" all whitespace after; otherwise
     * lstrip_blocks removes spaces and tabs between the line start and the comment, and
     * trim_blocks removes one newline after it. Expression and statement tags are skipped
     * whole, so a "{#" inside a string literal stays, and so does everything in raw blocks.
     */
    static String removeComments(String text) {
        StringBuilder out = new StringBuilder(text.length());
        int i = 0;
        while (i < text.length()) {
            if (text.startsWith("{%", i) || text.startsWith("{{", i)) {
                int end = endOfTag(text, i);
                boolean raw = text.startsWith("{%", i) && text.substring(i + 2, end).replace("-", "").replace("+", "").trim().equals("raw");
                if (raw) {
                    Matcher endRaw = END_RAW.matcher(text);
                    end = endRaw.find(end) ? endRaw.end() : text.length();
                }
                out.append(text, i, end);
                i = end;
                continue;
            }
            if (!text.startsWith("{#", i)) {
                out.append(text.charAt(i++));
                continue;
            }
            int close = text.indexOf("#}", i + 2);
            if (close < 0) {
                throw new IllegalArgumentException("unterminated comment in chat template");
            }
            boolean stripBefore = i + 2 < text.length() && text.charAt(i + 2) == '-';
            boolean stripAfter = close > i + 2 && text.charAt(close - 1) == '-';
            if (stripBefore) {
                int keep = out.length();
                while (keep > 0 && Character.isWhitespace(out.charAt(keep - 1))) {
                    keep--;
                }
                out.setLength(keep);
            } else {
                int lineStart = out.length();
                while (lineStart > 0 && (out.charAt(lineStart - 1) == ' ' || out.charAt(lineStart - 1) == '\t')) {
                    lineStart--;
                }
                if (lineStart == 0 || out.charAt(lineStart - 1) == '\n') {
                    out.setLength(lineStart);
                }
            }
            i = close + 2;
            if (stripAfter) {
                while (i < text.length() && Character.isWhitespace(text.charAt(i))) {
                    i++;
                }
            } else if (i < text.length() && text.charAt(i) == '\n') {
                i++;
            }
        }
        return out.toString();
    }

    /** Index just past the "}}" or "%}" closing the tag that starts at {@code start}, skipping string literals. */
    private static int endOfTag(String text, int start) {
        String closing = text.charAt(start + 1) == '{' ? "}}" : "%}";
        for (int i = start + 2; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '\'' || c == '"') {
                int end = endOfStringLiteral(text, i);
                if (end < 0) {
                    return text.length();
                }
                i = end;
            } else if (text.startsWith(closing, i)) {
                return i + 2;
            }
        }
        return text.length();
    }

    private static String parenthesizeNamespaceArguments(String text) {
        StringBuilder out = new StringBuilder(text.length() + 16);
        Matcher call = NAMESPACE_CALL.matcher(text);
        int copied = 0;
        while (call.find(copied)) {
            int open = call.end() - 1;
            int close = matchingParenthesis(text, open);
            if (close < 0) {
                break;
            }
            out.append(text, copied, open + 1);
            List<String> arguments = splitTopLevel(text.substring(open + 1, close));
            for (int i = 0; i < arguments.size(); i++) {
                String argument = arguments.get(i);
                Matcher keyword = KEYWORD_ARGUMENT.matcher(argument);
                if (i > 0) {
                    out.append(',');
                }
                if (keyword.matches()) {
                    out.append(keyword.group(1)).append('(').append(keyword.group(2)).append(')');
                } else {
                    out.append(argument);
                }
            }
            out.append(')');
            copied = close + 1;
        }
        out.append(text.substring(copied));
        return out.toString();
    }

    /** Index of the parenthesis closing the one at {@code open}, skipping string literals; -1 if none. */
    private static int matchingParenthesis(String text, int open) {
        int depth = 0;
        for (int i = open; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '\'' || c == '"') {
                i = endOfStringLiteral(text, i);
                if (i < 0) {
                    return -1;
                }
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
                if (depth == 0) {
                    return c == ')' ? i : -1;
                }
            }
        }
        return -1;
    }

    private static int endOfStringLiteral(String text, int quote) {
        char q = text.charAt(quote);
        for (int i = quote + 1; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '\\') {
                i++;
            } else if (c == q) {
                return i;
            }
        }
        return -1;
    }

    private static List<String> splitTopLevel(String arguments) {
        List<String> parts = new ArrayList<>();
        int depth = 0;
        int start = 0;
        for (int i = 0; i < arguments.length(); i++) {
            char c = arguments.charAt(i);
            if (c == '\'' || c == '"') {
                int end = endOfStringLiteral(arguments, i);
                i = end < 0 ? arguments.length() - 1 : end;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (c == ',' && depth == 0) {
                parts.add(arguments.substring(start, i));
                start = i + 1;
            }
        }
        parts.add(arguments.substring(start));
        return parts;
    }

    String render(List<Map<String, Object>> messages, boolean addGenerationPrompt, Map<String, Object> extraVariables) {
        Map<String, Object> context = new HashMap<>();
        putIfPresent(context, "bos_token", config.bosToken());
        putIfPresent(context, "eos_token", config.eosToken());
        putIfPresent(context, "unk_token", config.unkToken());
        putIfPresent(context, "pad_token", config.padToken());
        context.putAll(extraVariables);
        context.put("messages", messages);
        context.put("add_generation_prompt", addGenerationPrompt);
        RenderResult result;
        try {
            result = jinjava.renderForResult(template, context);
        } catch (RuntimeException e) {
            throw failure(e.getMessage(), e);
        }
        for (TemplateError error : result.getErrors()) {
            // A macro past the recursion limit is only a warning to Jinjava, and its call renders
            // as nothing: in Jinja2 it is an error, and so it is here.
            if (error.getException() instanceof MacroTagCycleException) {
                throw failure(error.getMessage() + " (line " + error.getLineno() + ")", error.getException());
            }
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                Throwable cause = error.getException();
                while (cause != null && !(cause instanceof TemplateRaisedException)) {
                    cause = cause.getCause();
                }
                if (cause != null) {
                    throw new IllegalArgumentException("chat template " + source + " refused the messages: " + cause.getMessage(), cause);
                }
                throw failure(error.getMessage() + " (line " + error.getLineno() + ")", error.getException());
            }
        }
        return result.getOutput();
    }

    private IllegalArgumentException failure(String message, Throwable cause) {
        return new IllegalArgumentException("chat template " + source + " failed: " + message, cause);
    }

    private static void putIfPresent(Map<String, Object> context, String name, String value) {
        if (value != null) {
            context.put(name, value);
        }
    }

    /** What {@code raise_exception(message)} throws. */
    static final class TemplateRaisedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        TemplateRaisedException(String message) {
            super(message);
        }
    }

    /** transformers' raise_exception global. */
    public static String raiseException(String message) {
        throw new TemplateRaisedException(message);
    }

    /** transformers' strftime_now global: the local time formatted with a strftime format. */
    public static String strftimeNow(String format) {
        return StrftimeFormatter.format(ZonedDateTime.now(), format);
    }

    /** transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False). */
    static final class ToJsonFilter implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return filter(var, interpreter, (Object[]) args, Map.of());
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object ensureAscii = argument(args, kwargs, 0, "ensure_ascii", false);
            Object indent = argument(args, kwargs, 1, "indent", null);
            Object separators = argument(args, kwargs, 2, "separators", null);
            Object sortKeys = argument(args, kwargs, 3, "sort_keys", false);
            List<String> separatorList = null;
            if (separators instanceof Iterable<?> items) {
                separatorList = new ArrayList<>();
                for (Object item : items) {
                    separatorList.add(String.valueOf(item));
                }
            }
            return PythonJson.dumps(var, PythonJson.Options.of(Boolean.TRUE.equals(ensureAscii), indent,
                    separatorList, Boolean.TRUE.equals(sortKeys)));
        }

        private static Object argument(Object[] args, Map<String, Object> kwargs, int position, String name, Object fallback) {
            if (kwargs != null && kwargs.containsKey(name)) {
                return kwargs.get(name);
            }
            return args != null && args.length > position ? args[position] : fallback;
        }
    }

    /** Jinja2's length: code points for strings (Python's len), not UTF-16 units. */
    static final class LengthFilter implements Filter {
        private final String name;

        LengthFilter(String name) {
            this.name = name;
        }

        @Override
        public String getName() {
            return name;
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var == null) {
                return 0;
            }
            if (var instanceof CharSequence s) {
                return s.toString().codePointCount(0, s.length());
            }
            if (var instanceof java.util.Collection<?> c) {
                return c.size();
            }
            if (var instanceof Map<?, ?> m) {
                return m.size();
            }
            if (var instanceof Object[] array) {
                return array.length;
            }
            if (var instanceof Iterable<?> items) {
                int n = 0;
                for (Object ignored : items) {
                    n++;
                }
                return n;
            }
            return 0;
        }
    }

    /** The items of a "for ... in ... if condition" loop for which the condition holds. */
    static final class LoopIfFilter implements Filter {
        @Override
        public String getName() {
            return "kiln_loop_if";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (args.length != 2) {
                throw new IllegalArgumentException("kiln_loop_if takes the loop target and the condition");
            }
            String[] targets = args[0].split("\\s*,\\s*");
            List<Object> kept = new ArrayList<>();
            Iterable<?> items = var instanceof Map<?, ?> map ? map.keySet() : var instanceof Iterable<?> it ? it : List.of();
            for (Object item : items) {
                try (JinjavaInterpreter.InterpreterScopeClosable scope = interpreter.enterScope()) {
                    if (targets.length == 1) {
                        interpreter.getContext().put(targets[0], item);
                    } else {
                        List<Object> parts = new ArrayList<>();
                        if (item instanceof Map.Entry<?, ?> entry) {
                            parts.add(entry.getKey());
                            parts.add(entry.getValue());
                        } else if (item instanceof Iterable<?> tuple) {
                            tuple.forEach(parts::add);
                        }
                        for (int t = 0; t < targets.length; t++) {
                            interpreter.getContext().put(targets[t], t < parts.size() ? parts.get(t) : null);
                        }
                    }
                    Object condition = interpreter.resolveELExpression(args[1], interpreter.getLineNumber());
                    if (isTruthy(condition)) {
                        kept.add(item);
                    }
                }
            }
            return kept;
        }

        private static boolean isTruthy(Object value) {
            if (value == null) {
                return false;
            }
            if (value instanceof Boolean b) {
                return b;
            }
            if (value instanceof Number n) {
                return n.doubleValue() != 0;
            }
            if (value instanceof CharSequence s) {
                return s.length() > 0;
            }
            if (value instanceof java.util.Collection<?> c) {
                return !c.isEmpty();
            }
            if (value instanceof Map<?, ?> m) {
                return !m.isEmpty();
            }
            return true;
        }
    }

    /** Jinja2's iterable test: strings, sequences, mappings and arrays (anything Python can iterate). */
    static final class IterableTest implements com.hubspot.jinjava.lib.exptest.ExpTest {
        @Override
        public String getName() {
            return "iterable";
        }

        @Override
        public boolean evaluate(Object var, JinjavaInterpreter interpreter, Object... args) {
            return var instanceof CharSequence || var instanceof Iterable<?> || var instanceof Map<?, ?>
                    || (var != null && var.getClass().isArray());
        }
    }

    /** Jinja2's upper and lower: of the value's Python str(). */
    static final class CaseFilter implements Filter {
        private final String name;
        private final boolean upper;

        CaseFilter(String name, boolean upper) {
            this.name = name;
            this.upper = upper;
        }

        @Override
        public String getName() {
            return name;
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            String text = PythonValues.str(var);
            return upper ? text.toUpperCase(java.util.Locale.ROOT) : text.toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** Jinja2's trim: Python's str.strip(chars), which strips Unicode whitespace. */
    static final class TrimFilter implements Filter {
        @Override
        public String getName() {
            return "trim";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            String chars = args != null && args.length > 0 ? args[0] : null;
            return PythonStrings.strip(PythonValues.str(var), chars, true, true);
        }
    }

    /** Jinja2's items: a mapping's (key, value) pairs in order; nothing for null. */
    static final class ItemsFilter implements Filter {
        @Override
        public String getName() {
            return "items";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var == null) {
                return List.of();
            }
            if (!(var instanceof Map<?, ?> map)) {
                throw new IllegalArgumentException("items: can only get item pairs from a mapping, got "
                        + PythonValues.str(var));
            }
            List<List<Object>> pairs = new java.util.ArrayList<>(map.size());
            for (Map.Entry<?, ?> e : map.entrySet()) {
                pairs.add(java.util.Arrays.asList(e.getKey(), e.getValue()));
            }
            return pairs;
        }
    }

    /**
     * Jinja2's max and min of a sequence: numbers by value, strings case-insensitively unless
     * case_sensitive=true, attribute=name compares that attribute; nothing for an empty sequence.
     */
    static final class ExtremumFilter implements Filter {
        private final String name;
        private final boolean largest;

        ExtremumFilter(String name, boolean largest) {
            this.name = name;
            this.largest = largest;
        }

        @Override
        public String getName() {
            return name;
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return filter(var, interpreter, (Object[]) args, Map.of());
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            boolean caseSensitive = Boolean.TRUE.equals(kwargs.get("case_sensitive"));
            Object attribute = kwargs.get("attribute");
            Iterable<?> items;
            if (var instanceof Iterable<?> iterable) {
                items = iterable;
            } else if (var instanceof Object[] array) {
                items = java.util.Arrays.asList(array);
            } else if (var instanceof CharSequence text) {
                items = text.codePoints().mapToObj(Character::toString).toList();
            } else {
                throw new IllegalArgumentException(name + ": needs a sequence, got " + PythonValues.str(var));
            }
            Object best = null;
            Comparable<Object> bestKey = null;
            for (Object item : items) {
                Object value = attribute == null ? item
                        : item instanceof Map<?, ?> m ? m.get(attribute.toString()) : null;
                Comparable<Object> key = key(value, caseSensitive);
                if (bestKey != null && key.getClass() != bestKey.getClass()) {
                    throw new IllegalArgumentException(name + ": cannot compare a number with a string");
                }
                if (bestKey == null || (largest ? key.compareTo(bestKey) > 0 : key.compareTo(bestKey) < 0)) {
                    best = item;
                    bestKey = key;
                }
            }
            return best;
        }

        @SuppressWarnings("unchecked")
        private Comparable<Object> key(Object value, boolean caseSensitive) {
            if (value instanceof Number n) {
                return (Comparable<Object>) (Comparable<?>) Double.valueOf(n.doubleValue());
            }
            if (value instanceof CharSequence text) {
                String s = text.toString();
                return (Comparable<Object>) (Comparable<?>) (caseSensitive ? s : s.toLowerCase(java.util.Locale.ROOT));
            }
            throw new IllegalArgumentException(name + ": cannot compare " + PythonValues.str(value));
        }
    }
}
