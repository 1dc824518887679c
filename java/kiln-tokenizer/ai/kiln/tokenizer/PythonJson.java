package ai.kiln.tokenizer;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Python's {@code json.dumps}, as transformers' {@code tojson} template filter calls it
 * ({@code ensure_ascii=False} by default, separators ", " and ": ", optional indent and
 * sort_keys), so that tool schemas and arguments render byte for byte as in Python.
 */
final class PythonJson {
    record Options(boolean ensureAscii, String indent, String itemSeparator, String keySeparator, boolean sortKeys) {
        static Options of(boolean ensureAscii, Object indent, List<String> separators, boolean sortKeys) {
            String indentText = null;
            if (indent instanceof Number n) {
                indentText = " ".repeat(Math.max(0, n.intValue()));
            } else if (indent instanceof String s) {
                indentText = s;
            }
            String item = indentText == null ? ", " : ",";
            String key = ": ";
            if (separators != null) {
                if (separators.size() != 2) {
                    throw new IllegalArgumentException("separators must be (item_separator, key_separator)");
                }
                item = separators.get(0);
                key = separators.get(1);
            }
            return new Options(ensureAscii, indentText, item, key, sortKeys);
        }
    }

    private PythonJson() {
    }

    static String dumps(Object value, Options options) {
        StringBuilder out = new StringBuilder();
        write(value, options, 0, out);
        return out.toString();
    }

    private static void write(Object value, Options options, int level, StringBuilder out) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof Boolean b) {
            out.append(b ? "true" : "false");
        } else if (value instanceof CharSequence s) {
            writeString(s.toString(), options.ensureAscii(), out);
        } else if (value instanceof Double || value instanceof Float) {
            out.append(floatRepr(((Number) value).doubleValue()));
        } else if (value instanceof BigDecimal d) {
            out.append(floatRepr(d.doubleValue()));
        } else if (value instanceof Number n) {
            out.append(n.toString());
        } else if (value instanceof Map<?, ?> map) {
            writeMap(map, options, level, out);
        } else if (value instanceof Iterable<?> items) {
            List<Object> list = new ArrayList<>();
            items.forEach(list::add);
            writeList(list, options, level, out);
        } else if (value instanceof Object[] array) {
            writeList(List.of(array), options, level, out);
        } else {
            throw new IllegalArgumentException("Object of type " + value.getClass().getSimpleName() + " is not JSON serializable");
        }
    }

    private static void writeList(List<Object> list, Options options, int level, StringBuilder out) {
        if (list.isEmpty()) {
            out.append("[]");
            return;
        }
        out.append('[');
        for (int i = 0; i < list.size(); i++) {
            if (i > 0) {
                out.append(options.itemSeparator());
            }
            newline(options, level + 1, out);
            write(list.get(i), options, level + 1, out);
        }
        newline(options, level, out);
        out.append(']');
    }

    private static void writeMap(Map<?, ?> map, Options options, int level, StringBuilder out) {
        if (map.isEmpty()) {
            out.append("{}");
            return;
        }
        List<Map.Entry<String, Object>> entries = new ArrayList<>();
        for (Map.Entry<?, ?> entry : map.entrySet()) {
            entries.add(Map.entry(keyString(entry.getKey()), entry.getValue() == null ? NULL : entry.getValue()));
        }
        if (options.sortKeys()) {
            entries.sort(Map.Entry.comparingByKey(PythonJson::compareCodePoints));
        }
        out.append('{');
        for (int i = 0; i < entries.size(); i++) {
            if (i > 0) {
                out.append(options.itemSeparator());
            }
            newline(options, level + 1, out);
            writeString(entries.get(i).getKey(), options.ensureAscii(), out);
            out.append(options.keySeparator());
            Object v = entries.get(i).getValue();
            write(v == NULL ? null : v, options, level + 1, out);
        }
        newline(options, level, out);
        out.append('}');
    }

    /** Stands for a null map value inside Map.entry, which refuses nulls. */
    private static final Object NULL = new Object();

    private static int compareCodePoints(String a, String b) {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i);
            int cb = b.codePointAt(j);
            if (ca != cb) {
                return Integer.compare(ca, cb);
            }
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }

    private static String keyString(Object key) {
        if (key == null) {
            return "null";
        }
        if (key instanceof Boolean b) {
            return b ? "true" : "false";
        }
        if (key instanceof Double || key instanceof Float) {
            return floatRepr(((Number) key).doubleValue());
        }
        return key.toString();
    }

    private static void newline(Options options, int level, StringBuilder out) {
        if (options.indent() != null) {
            out.append('\n').append(options.indent().repeat(level));
        }
    }

    private static void writeString(String s, boolean ensureAscii, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                case '\r': out.append("\\r"); break;
                case '\t': out.append("\\t"); break;
                case '\b': out.append("\\b"); break;
                case '\f': out.append("\\f"); break;
                default:
                    if (c < 0x20 || (ensureAscii && c > 0x7E)) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        out.append('"');
    }

    /** Python's repr of a float: the shortest round-tripping digits, exponent form outside [1e-4, 1e16). */
    static String floatRepr(double x) {
        if (Double.isNaN(x)) {
            return "NaN";
        }
        if (Double.isInfinite(x)) {
            return x > 0 ? "Infinity" : "-Infinity";
        }
        if (x == 0) {
            return (1 / x < 0) ? "-0.0" : "0.0";
        }
        BigDecimal exact = new BigDecimal(Double.toString(Math.abs(x))).stripTrailingZeros();
        String digits = exact.unscaledValue().toString();
        // Value = 0.digits * 10^pointPosition
        int pointPosition = digits.length() - exact.scale();
        StringBuilder out = new StringBuilder();
        if (x < 0) {
            out.append('-');
        }
        if (pointPosition > 16 || pointPosition <= -4) {
            out.append(digits.charAt(0));
            if (digits.length() > 1) {
                out.append('.').append(digits, 1, digits.length());
            }
            int exponent = pointPosition - 1;
            out.append('e').append(exponent < 0 ? '-' : '+');
            String e = Integer.toString(Math.abs(exponent));
            out.append(e.length() < 2 ? "0" + e : e);
        } else if (pointPosition <= 0) {
            out.append("0.").append("0".repeat(-pointPosition)).append(digits);
        } else if (pointPosition >= digits.length()) {
            out.append(digits).append("0".repeat(pointPosition - digits.length())).append(".0");
        } else {
            out.append(digits, 0, pointPosition).append('.').append(digits, pointPosition, digits.length());
        }
        return out.toString();
    }
}
