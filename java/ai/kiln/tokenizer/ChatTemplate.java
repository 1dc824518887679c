package ai.kiln.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
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
 * {@code trim}. Two Python constructs Jinjava cannot parse are rewritten before parsing:
 * {@code seq[::-1]} becomes {@code seq|reverse}, and the keyword arguments of
 * {@code namespace(...)} are parenthesized (Jinjava would otherwise apply a filter in
 * {@code n=messages|length - 1} to the whole argument).
 *
 * <p>Known differences from Jinja2, none used by the Llama 3 or Qwen 3 templates: {@code loop.previtem}
 * and {@code loop.nextitem} are undefined; printing a boolean or None gives "true"/"" rather than
 * "True"/"None"; other slices with a step are not supported.
 */
final class ChatTemplate {
    private static final Pattern REVERSE_SLICE = Pattern.compile("\\[\\s*:\\s*:\\s*-\\s*1\\s*]");
    private static final Pattern NAMESPACE_CALL = Pattern.compile("\\bnamespace\\s*\\(");

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
                .build();
        jinjava = new Jinjava(jinjavaConfig);
        jinjava.getGlobalContext().registerFilter(new ToJsonFilter());
        jinjava.getGlobalContext().registerFilter(new TrimFilter());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                ChatTemplate.class, "raiseException", String.class));
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                ChatTemplate.class, "strftimeNow", String.class));
    }

    /** Jinja2's source handling plus the rewrites described in the class comment. */
    static String preprocess(String template) {
        // Jinja2 normalizes line endings and, without keep_trailing_newline, drops one final newline.
        String text = template.replace("\r\n", "\n").replace('\r', '\n');
        if (text.endsWith("\n")) {
            text = text.substring(0, text.length() - 1);
        }
        text = REVERSE_SLICE.matcher(text).replaceAll("|reverse");
        return parenthesizeNamespaceArguments(text);
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
                Matcher keyword = Pattern.compile("^(\\s*[A-Za-z_][A-Za-z0-9_]*\\s*=)(?!=)(.*)$", Pattern.DOTALL).matcher(argument);
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

    /** Jinja2's trim: Python's str.strip(chars), which strips Unicode whitespace. */
    static final class TrimFilter implements Filter {
        @Override
        public String getName() {
            return "trim";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            String chars = args != null && args.length > 0 ? args[0] : null;
            return PythonStrings.strip(var == null ? "" : var.toString(), chars, true, true);
        }
    }
}
