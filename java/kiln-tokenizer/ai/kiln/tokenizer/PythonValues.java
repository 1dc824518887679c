package ai.kiln.tokenizer;

import java.util.Map;

/** Python's str() and repr() of template values, for what {@code {{ ... }}} prints. */
final class PythonValues {
    private PythonValues() {
    }

    /**
     * str(value) as Jinja2 prints it. Null prints as "": Jinjava cannot tell None from an
     * undefined variable, and printing an undefined variable (which gives "") is far more common.
     */
    public static String str(Object value) {
        if (value == null) {
            return "";
        }
        if (value instanceof CharSequence s) {
            return s.toString();
        }
        return repr(value);
    }

    static String repr(Object value) {
        StringBuilder out = new StringBuilder();
        appendRepr(value, out);
        return out.toString();
    }

    private static void appendRepr(Object value, StringBuilder out) {
        if (value == null) {
            out.append("None");
        } else if (value instanceof Boolean b) {
            out.append(b ? "True" : "False");
        } else if (value instanceof CharSequence s) {
            appendStringRepr(s.toString(), out);
        } else if (value instanceof Double || value instanceof Float) {
            double d = ((Number) value).doubleValue();
            out.append(Double.isNaN(d) ? "nan" : Double.isInfinite(d) ? (d > 0 ? "inf" : "-inf") : PythonJson.floatRepr(d));
        } else if (value instanceof Number n) {
            out.append(n);
        } else if (value instanceof Map<?, ?> map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                if (!first) {
                    out.append(", ");
                }
                first = false;
                appendRepr(entry.getKey(), out);
                out.append(": ");
                appendRepr(entry.getValue(), out);
            }
            out.append('}');
        } else if (value instanceof Iterable<?> items) {
            out.append('[');
            boolean first = true;
            for (Object item : items) {
                if (!first) {
                    out.append(", ");
                }
                first = false;
                appendRepr(item, out);
            }
            out.append(']');
        } else {
            out.append(value);
        }
    }

    /** Python's string repr: single quotes unless the text has a single quote and no double quote. */
    private static void appendStringRepr(String s, StringBuilder out) {
        char quote = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        out.append(quote);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == quote || c == '\\') {
                out.append('\\').append(c);
            } else if (c == '\n') {
                out.append("\\n");
            } else if (c == '\r') {
                out.append("\\r");
            } else if (c == '\t') {
                out.append("\\t");
            } else if (c < 0x20 || c == 0x7F) {
                out.append(String.format("\\x%02x", (int) c));
            } else {
                out.append(c);
            }
        }
        out.append(quote);
    }
}
