package ai.kiln.grammar;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * JSON Schema as a grammar of the JSON texts it accepts (the subset OpenAI's strict mode takes and
 * a little more): {@code type} (one or a list), {@code enum}, {@code const}, {@code anyOf}, {@code
 * oneOf} where its options cannot match the same value (different types, different constants, or
 * objects told apart by a required property's constants: a grammar cannot check "exactly one"
 * otherwise), a one-schema {@code allOf}, {@code $ref} into {@code $defs}/{@code definitions} or to
 * {@code #};
 * integers and numbers with {@code minimum}, {@code maximum}, {@code exclusiveMinimum}, {@code
 * exclusiveMaximum} (for numbers: integer bounds, and the number is written without an exponent);
 * objects with {@code properties}, {@code required} and {@code additionalProperties}; arrays with
 * {@code prefixItems} (tuples), {@code items} (a schema, or false after {@code prefixItems}), {@code
 * minItems}, {@code maxItems}; strings with {@code minLength}, {@code
 * maxLength}, {@code pattern} or {@code format} (date, time, date-time, uuid, ipv4, hostname,
 * email). Annotations (title, description, default, examples, ...) are
 * ignored; any other keyword is refused by name, since ignoring it could let through a value the
 * schema forbids.
 *
 * <p>The text is JSON as a compact writer with a space after ':' and ',' would give, the space
 * optional: object members in the order of {@code properties}, every required one present, optional
 * ones free to be left out; no other whitespace. A {@code pattern} must match the whole string.
 * A schema's recursion ({@code $ref} back to an enclosing schema) becomes a rule that calls itself;
 * everything else is written out in place, so that the token masks of most states are known in
 * advance ({@link CompiledGrammar}).
 */
public final class JsonSchemaCompiler {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "default", "examples", "$schema",
            "$id", "$comment", "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "strict");
    private static final Set<String> KEYWORDS = Set.of("type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref",
            "properties", "required", "additionalProperties", "prefixItems", "items", "minItems", "maxItems", "minLength",
            "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum");
    private static final List<String> BOUNDS = List.of("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum");
    /** The largest magnitude an integer bound may have. */
    static final long MAX_INTEGER_BOUND = 1_000_000_000_000_000_000L;
    // NOTE: exponents of at most three digits: longer ones are valid JSON that parsers refuse or overflow.
    private static final String NUMBER = "-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]{1,3})?";
    private static final String INTEGER = "-?(0|[1-9][0-9]*)";
    /**
     * The string formats written as patterns. Each pattern accepts a subset of its format's
     * values, never a value outside it: a date's day is at most the month's length (February's
     * 28), a time has no leap second, a date-time's offset is under 12 hours and a time alone is
     * in UTC, a hostname has at most three labels of at most 63
     * characters, an email's local part at most 50 characters and its domain one of a few common
     * top-level domains (validators check the top-level domain against IANA's list).
     */
    private static final Map<String, String> FORMATS = formats();
    /** The most items or characters a bounded array or string may be written out for. */
    static final int MAX_BOUND = 256;

    private final GrammarBuilder builder = new GrammarBuilder();
    private final JsonNode root;
    private final Map<String, GrammarBuilder.Rule> refRules = new HashMap<>();
    private final Deque<String> expanding = new ArrayDeque<>();
    private GrammarBuilder.Rule stringRule;
    private GrammarBuilder.Rule objectRule;
    private GrammarBuilder.Rule arrayRule;

    private JsonSchemaCompiler(JsonNode root) {
        this.root = root;
    }

    /** The grammar of the JSON texts {@code schema} accepts. */
    public static Grammar compile(JsonNode schema) {
        return compile(schema, new byte[0], new byte[0]);
    }

    /** The grammar of {@code open}, then a JSON text {@code schema} accepts, then {@code close}. */
    public static Grammar compile(JsonNode schema, byte[] open, byte[] close) {
        JsonSchemaCompiler c = new JsonSchemaCompiler(schema);
        GrammarBuilder.Rule top = c.builder.rule("root");
        c.expanding.push("#");
        int afterOpen = top.literal(top.start(), open);
        top.epsilon(top.literal(c.emit(top, afterOpen, schema, "#"), close), top.end());
        return c.builder.build(top);
    }

    /** The grammar of any JSON object (OpenAI's {@code json_object} mode). */
    public static Grammar anyObject() {
        JsonSchemaCompiler c = new JsonSchemaCompiler(null);
        GrammarBuilder.Rule top = c.builder.rule("root");
        top.call(top.start(), c.objectRule(), top.end());
        return c.builder.build(top);
    }

    private static GrammarException error(String path, String problem) {
        return new GrammarException("schema " + path + ": " + problem);
    }

    /** Emits the texts {@code schema} accepts from {@code at}; returns the state after one. */
    private int emit(GrammarBuilder.Rule r, int at, JsonNode schema, String path) {
        if (schema.isBoolean()) {
            if (!schema.booleanValue()) {
                throw error(path, "the schema false accepts no value");
            }
            return anyValue(r, at);
        }
        if (!schema.isObject()) {
            throw error(path, "a schema must be an object or a boolean, got " + schema.getNodeType().toString().toLowerCase());
        }
        for (Iterator<String> it = schema.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!KEYWORDS.contains(key) && !ANNOTATIONS.contains(key)) {
                throw error(path, "the keyword '" + key + "' is not supported");
            }
        }
        if (schema.has("$ref")) {
            for (String k : KEYWORDS) {
                if (!k.equals("$ref") && schema.has(k)) {
                    throw error(path, "'$ref' together with '" + k + "' is not supported");
                }
            }
            return ref(r, at, text(schema.get("$ref"), path + "/$ref"), path);
        }
        if (schema.has("allOf")) {
            JsonNode all = schema.get("allOf");
            if (!all.isArray() || all.size() != 1 || schema.size() > 1 && hasOtherKeywords(schema, "allOf")) {
                throw error(path, "'allOf' is supported only with a single schema and no sibling keywords");
            }
            return emit(r, at, all.get(0), path + "/allOf/0");
        }
        if (schema.has("const")) {
            return literalValues(r, at, constants(schema));
        }
        if (schema.has("enum")) {
            JsonNode values = schema.get("enum");
            if (!values.isArray() || values.isEmpty()) {
                throw error(path + "/enum", "'enum' must be a non-empty array");
            }
            return literalValues(r, at, constants(schema));
        }
        if (schema.has("anyOf")) {
            return alternatives(r, at, schema, "anyOf", path);
        }
        if (schema.has("oneOf")) {
            return alternatives(r, at, schema, "oneOf", path);
        }
        List<String> types = types(schema, path);
        if (types.isEmpty()) {
            return anyValue(r, at);
        }
        int end = r.state();
        for (String type : types) {
            r.epsilon(emitType(r, at, schema, type, path), end);
        }
        return end;
    }

    /**
     * The texts any one of an anyOf's or oneOf's options accepts; a oneOf's options must be
     * disjoint, since a grammar cannot refuse a value that matches two of them.
     */
    private int alternatives(GrammarBuilder.Rule r, int at, JsonNode schema, String keyword, String path) {
        JsonNode options = schema.get(keyword);
        if (!options.isArray() || options.isEmpty()) {
            throw error(path + "/" + keyword, "'" + keyword + "' must be a non-empty array of schemas");
        }
        if (hasOtherKeywords(schema, keyword)) {
            throw error(path, "'" + keyword + "' together with other keywords is not supported; move them into each"
                    + " option");
        }
        if (keyword.equals("oneOf")) {
            for (int i = 0; i < options.size(); i++) {
                for (int j = i + 1; j < options.size(); j++) {
                    if (!disjoint(options.get(i), options.get(j), path)) {
                        throw error(path + "/oneOf", "options " + i + " and " + j + " may match the same value, which"
                                + " a grammar cannot refuse; 'oneOf' is supported where the options differ in type, in"
                                + " their 'const'/'enum' values, or as objects in a required property's 'const'/'enum'"
                                + " values (use 'anyOf' where a value may match both)");
                    }
                }
            }
        }
        int end = r.state();
        for (int i = 0; i < options.size(); i++) {
            r.epsilon(emit(r, at, options.get(i), path + "/" + keyword + "/" + i), end);
        }
        return end;
    }

    // ---- oneOf: options that cannot match the same value ------------------------------------------

    /** Whether no value matches both schemas, as far as their types and constants tell. */
    private boolean disjoint(JsonNode a, JsonNode b, String path) {
        a = dereferenced(a, path);
        b = dereferenced(b, path);
        Set<String> kindsA = kinds(a), kindsB = kinds(b);
        if (kindsA != null && kindsB != null && java.util.Collections.disjoint(kindsA, kindsB)) {
            return true;
        }
        List<JsonNode> constantsA = constants(a), constantsB = constants(b);
        if (constantsA != null && constantsB != null) {
            return constantsA.stream().noneMatch(x -> constantsB.stream().anyMatch(y -> sameValue(x, y)));
        }
        if (constantsA != null && kindsB != null) {
            return constantsA.stream().noneMatch(x -> kindsB.contains(kind(x)));
        }
        if (constantsB != null && kindsA != null) {
            return constantsB.stream().noneMatch(x -> kindsA.contains(kind(x)));
        }
        // Objects told apart by a property both require, whose constants differ.
        if (a.has("properties") && b.has("properties")) {
            for (Iterator<String> it = a.get("properties").fieldNames(); it.hasNext(); ) {
                String name = it.next();
                if (requires(a, name) && requires(b, name) && b.get("properties").has(name)) {
                    List<JsonNode> x = constants(dereferenced(a.get("properties").get(name), path));
                    List<JsonNode> y = constants(dereferenced(b.get("properties").get(name), path));
                    if (x != null && y != null && x.stream().noneMatch(u -> y.stream().anyMatch(v -> sameValue(u, v)))) {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    /** A schema with its (chain of) $ref followed. */
    private JsonNode dereferenced(JsonNode schema, String path) {
        for (int hops = 0; schema.isObject() && schema.has("$ref") && hops < 64; hops++) {
            schema = resolve(schema.get("$ref").asText(), path);
        }
        return schema;
    }

    private static boolean requires(JsonNode schema, String name) {
        JsonNode required = schema.get("required");
        if (required == null || !required.isArray()) {
            return false;
        }
        for (JsonNode n : required) {
            if (name.equals(n.asText())) {
                return true;
            }
        }
        return false;
    }

    /** The JSON kinds a schema's values may have ("number" for integers too), or null where unknown. */
    private static Set<String> kinds(JsonNode schema) {
        if (!schema.isObject() || schema.has("anyOf") || schema.has("oneOf") || schema.has("allOf")) {
            return null;
        }
        List<JsonNode> constants = constants(schema);
        if (constants != null) {
            Set<String> set = new java.util.HashSet<>();
            constants.forEach(c -> set.add(kind(c)));
            return set;
        }
        JsonNode type = schema.get("type");
        if (type == null) {
            return null;
        }
        Set<String> set = new java.util.HashSet<>();
        for (JsonNode t : type.isArray() ? type : JSON.createArrayNode().add(type)) {
            set.add(t.asText().equals("integer") ? "number" : t.asText());
        }
        return set;
    }

    /** The values of a const or enum schema, or null for any other. */
    private static List<JsonNode> constants(JsonNode schema) {
        if (!schema.isObject()) {
            return null;
        }
        if (schema.has("const")) {
            return List.of(schema.get("const"));
        }
        if (schema.has("enum") && schema.get("enum").isArray()) {
            List<JsonNode> values = new ArrayList<>();
            schema.get("enum").forEach(values::add);
            return values;
        }
        return null;
    }

    private static String kind(JsonNode value) {
        return switch (value.getNodeType()) {
            case OBJECT -> "object";
            case ARRAY -> "array";
            case STRING -> "string";
            case NUMBER -> "number";
            case BOOLEAN -> "boolean";
            default -> "null";
        };
    }

    /** JSON equality: numbers by value (1 and 1.0 are the same). */
    private static boolean sameValue(JsonNode x, JsonNode y) {
        if (x.isNumber() && y.isNumber()) {
            return x.decimalValue().compareTo(y.decimalValue()) == 0;
        }
        return x.equals(y);
    }

    private static boolean hasOtherKeywords(JsonNode schema, String except) {
        for (Iterator<String> it = schema.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!key.equals(except) && KEYWORDS.contains(key)) {
                return true;
            }
        }
        return false;
    }

    /** The schema's types: given, or inferred from its keywords; empty for any value. */
    private static List<String> types(JsonNode schema, String path) {
        JsonNode type = schema.get("type");
        List<String> types = new ArrayList<>();
        if (type == null) {
            if (schema.has("properties") || schema.has("required") || schema.has("additionalProperties")) {
                types.add("object");
            } else if (schema.has("items") || schema.has("prefixItems") || schema.has("minItems")
                    || schema.has("maxItems")) {
                types.add("array");
            } else if (schema.has("pattern") || schema.has("minLength") || schema.has("maxLength")
                    || schema.has("format")) {
                types.add("string");
            } else if (hasBounds(schema)) {
                throw error(path, "numeric bounds need 'type': 'integer'");
            }
            return types;
        }
        if (type.isTextual()) {
            types.add(type.textValue());
        } else if (type.isArray() && !type.isEmpty()) {
            for (JsonNode t : type) {
                if (!t.isTextual()) {
                    throw error(path + "/type", "'type' must be a type name or an array of them");
                }
                types.add(t.textValue());
            }
        } else {
            throw error(path + "/type", "'type' must be a type name or a non-empty array of them");
        }
        for (String t : types) {
            if (!Set.of("string", "number", "integer", "boolean", "null", "object", "array").contains(t)) {
                throw error(path + "/type", "unknown type '" + t + "'");
            }
        }
        return new ArrayList<>(new LinkedHashSet<>(types));
    }

    private int emitType(GrammarBuilder.Rule r, int at, JsonNode schema, String type, String path) {
        return switch (type) {
            case "string" -> string(r, at, schema, path);
            case "number" -> hasBounds(schema) ? boundedNumber(r, at, schema, path)
                    : RegexCompiler.emit(NUMBER, "number", r, at, false);
            case "integer" -> hasBounds(schema) ? boundedInteger(r, at, schema, path)
                    : RegexCompiler.emit(INTEGER, "integer", r, at, false);
            case "boolean" -> {
                int end = r.state();
                r.epsilon(r.literal(at, ascii("true")), end);
                r.epsilon(r.literal(at, ascii("false")), end);
                yield end;
            }
            case "null" -> r.literal(at, ascii("null"));
            case "object" -> object(r, at, schema, path);
            default -> array(r, at, schema, path);
        };
    }

    private static boolean hasBounds(JsonNode schema) {
        return BOUNDS.stream().anyMatch(schema::has);
    }

    /** An integer within the schema's minimum, maximum and exclusive bounds (any number may bound it). */
    private static int boundedInteger(GrammarBuilder.Rule r, int at, JsonNode schema, String path) {
        Long lo = null;
        Long hi = null;
        for (String key : BOUNDS) {
            JsonNode v = schema.get(key);
            if (v == null) {
                continue;
            }
            if (!v.isNumber()) {
                throw error(path + "/" + key, "'" + key + "' must be a number");
            }
            java.math.BigDecimal bound = v.decimalValue();
            if (bound.abs().compareTo(java.math.BigDecimal.valueOf(MAX_INTEGER_BOUND)) > 0) {
                throw error(path + "/" + key, "integer bounds beyond 10^18 in magnitude are not supported");
            }
            java.math.BigDecimal floor = bound.setScale(0, java.math.RoundingMode.FLOOR);
            java.math.BigDecimal ceil = bound.setScale(0, java.math.RoundingMode.CEILING);
            switch (key) {
                case "minimum" -> lo = max(lo, ceil.longValueExact());
                case "exclusiveMinimum" -> lo = max(lo, floor.longValueExact() + 1);
                case "maximum" -> hi = min(hi, floor.longValueExact());
                default -> hi = min(hi, ceil.longValueExact() - 1);
            }
        }
        if (lo != null && hi != null && lo > hi) {
            throw error(path, "no integer lies within its bounds");
        }
        return IntegerRange.emit(r, at, lo, hi);
    }

    /** A number within the schema's bounds, which must be integers here; written without an exponent. */
    private static int boundedNumber(GrammarBuilder.Rule r, int at, JsonNode schema, String path) {
        NumberRange.End lower = null;
        NumberRange.End upper = null;
        for (String key : BOUNDS) {
            JsonNode v = schema.get(key);
            if (v == null) {
                continue;
            }
            if (!v.isNumber()) {
                throw error(path + "/" + key, "'" + key + "' must be a number");
            }
            java.math.BigDecimal bound = v.decimalValue();
            if (bound.signum() != 0 && bound.stripTrailingZeros().scale() > 0) {
                throw error(path + "/" + key, "bounds of type 'number' must be integers, got " + v);
            }
            if (bound.abs().compareTo(java.math.BigDecimal.valueOf(MAX_INTEGER_BOUND)) > 0) {
                throw error(path + "/" + key, "number bounds beyond 10^18 in magnitude are not supported");
            }
            boolean exclusive = key.startsWith("exclusive");
            NumberRange.End end = new NumberRange.End(bound.longValueExact(), exclusive);
            if (key.endsWith("inimum")) {
                lower = tighter(lower, end, true);
            } else {
                upper = tighter(upper, end, false);
            }
        }
        if (lower != null && upper != null && (lower.value() > upper.value()
                || (lower.value() == upper.value() && (lower.exclusive() || upper.exclusive())))) {
            throw error(path, "no number lies within its bounds");
        }
        return NumberRange.emit(r, at, lower, upper);
    }

    /** The tighter of two ends of one side (lower: the larger value; at equal values the exclusive one). */
    private static NumberRange.End tighter(NumberRange.End a, NumberRange.End b, boolean lower) {
        if (a == null) {
            return b;
        }
        if (a.value() != b.value()) {
            return (a.value() > b.value()) == lower ? a : b;
        }
        return a.exclusive() ? a : b;
    }

    private static Long max(Long a, long b) {
        return a == null ? b : Math.max(a, b);
    }

    private static Long min(Long a, long b) {
        return a == null ? b : Math.min(a, b);
    }

    // ---- references --------------------------------------------------------------------------

    private int ref(GrammarBuilder.Rule r, int at, String ref, String path) {
        JsonNode target = resolve(ref, path);
        GrammarBuilder.Rule rule = refRules.get(ref);
        if (rule == null && expanding.contains(ref)) {
            // Recursion: the referenced schema becomes a rule that calls itself.
            rule = builder.rule(ref);
            refRules.put(ref, rule);
            rule.epsilon(emit(rule, rule.start(), target, ref), rule.end());
        }
        if (rule != null) {
            int end = r.state();
            r.call(at, rule, end);
            return end;
        }
        expanding.push(ref);
        try {
            return emit(r, at, target, ref);
        } finally {
            expanding.pop();
        }
    }

    private JsonNode resolve(String ref, String path) {
        if (root == null || !(ref.equals("#") || ref.startsWith("#/"))) {
            throw error(path + "/$ref", "only references within the schema ('#' or '#/...') are supported, got '" + ref + "'");
        }
        JsonNode node = root;
        if (ref.length() > 1) {
            for (String part : ref.substring(2).split("/", -1)) {
                String name = part.replace("~1", "/").replace("~0", "~");
                node = node.isArray() && name.matches("\\d+") ? node.get(Integer.parseInt(name)) : node.get(name);
                if (node == null) {
                    throw error(path + "/$ref", "the reference '" + ref + "' names nothing in the schema");
                }
            }
        }
        return node;
    }

    // ---- values ------------------------------------------------------------------------------

    private int literalValues(GrammarBuilder.Rule r, int at, List<JsonNode> values) {
        int end = r.state();
        for (JsonNode v : values) {
            r.epsilon(r.literal(at, compact(v)), end);
        }
        return end;
    }

    private static byte[] compact(JsonNode v) {
        try {
            return JSON.writeValueAsBytes(v);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Map<String, String> formats() {
        String day31 = "(0[1-9]|[12][0-9]|3[01])";
        String date = "[0-9]{4}-((0[13578]|1[02])-" + day31 + "|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))";
        String partialTime = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?";
        String offset = "(Z|[+-](0[0-9]|1[01]):[0-5][0-9])";
        String label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?";
        String octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
        return Map.of(
                "date", date,
                // NOTE: a time alone is in UTC: validators disagree on a local time whose offset crosses midnight.
                "time", partialTime + "Z",
                "date-time", date + "T" + partialTime + offset,
                "uuid", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "ipv4", octet + "(\\." + octet + "){3}",
                "hostname", label + "(\\." + label + "){0,2}",
                "email", "[a-zA-Z0-9_%+-]{1,16}(\\.[a-zA-Z0-9_%+-]{1,16}){0,2}@" + label + "(\\." + label
                        + ")?\\.(com|org|net|edu|gov|io|dev|info)");
    }

    private int string(GrammarBuilder.Rule r, int at, JsonNode schema, String path) {
        int min = bound(schema, "minLength", 0, path);
        int max = bound(schema, "maxLength", -1, path);
        JsonNode pattern = schema.get("pattern");
        JsonNode format = schema.get("format");
        if (format != null) {
            String name = text(format, path + "/format");
            String formatPattern = FORMATS.get(name);
            if (formatPattern == null) {
                throw error(path + "/format", "the format '" + name + "' is not supported (supported: "
                        + new java.util.TreeSet<>(FORMATS.keySet()) + ")");
            }
            if (pattern != null || schema.has("minLength") || schema.has("maxLength")) {
                throw error(path, "'format' together with 'pattern', 'minLength' or 'maxLength' is not supported");
            }
            int open = r.literal(at, ascii("\""));
            int close = RegexCompiler.emit(formatPattern, "format " + name, r, open, true);
            return r.literal(close, ascii("\""));
        }
        if (pattern != null) {
            if (schema.has("minLength") || schema.has("maxLength")) {
                throw error(path, "'pattern' together with 'minLength' or 'maxLength' is not supported");
            }
            int open = r.literal(at, ascii("\""));
            int close = RegexCompiler.emit(text(pattern, path + "/pattern"), "schema " + path + "/pattern", r, open, true);
            return r.literal(close, ascii("\""));
        }
        if (min == 0 && max < 0) {
            int end = r.state();
            r.call(at, stringRule(), end);
            return end;
        }
        if (max >= 0 && max < min) {
            throw error(path, "'maxLength' " + max + " is below 'minLength' " + min);
        }
        if (Math.max(min, max) > MAX_BOUND) {
            throw error(path, "string lengths over " + MAX_BOUND + " are not supported");
        }
        int s = r.literal(at, ascii("\""));
        for (int i = 0; i < min; i++) {
            s = stringChar(r, s);
        }
        if (max < 0) {
            int loop = r.state();
            r.epsilon(s, loop);
            r.epsilon(stringChar(r, loop), loop);
            s = loop;
        } else {
            int end = r.state();
            for (int i = min; i < max; i++) {
                r.epsilon(s, end);
                s = stringChar(r, s);
            }
            r.epsilon(s, end);
            s = end;
        }
        return r.literal(s, ascii("\""));
    }

    private static int bound(JsonNode schema, String key, int absent, String path) {
        JsonNode v = schema.get(key);
        if (v == null) {
            return absent;
        }
        if (!v.canConvertToInt() || !v.isIntegralNumber() || v.intValue() < 0) {
            throw error(path + "/" + key, "'" + key + "' must be an integer >= 0");
        }
        return v.intValue();
    }

    /**
     * One character of a JSON string: any code point but the quote, the backslash and the controls,
     * or an escape; a {@code \\u} escape names no surrogate, so that every character is one code
     * point (what minLength and maxLength count).
     */
    private static int stringChar(GrammarBuilder.Rule r, int at) {
        int end = RegexCompiler.chars(r, at, CodePointSet.ANY.minus(RegexCompiler.JSON_ESCAPED), false);
        int backslash = r.literal(at, ascii("\\"));
        for (char c : "\"\\/bfnrt".toCharArray()) {
            r.bytes(backslash, c, c, end);
        }
        int u = r.literal(backslash, ascii("u"));
        // Four hex digits other than D800-DFFF.
        int notD = r.state();
        int d = r.state();
        for (int[] range : new int[][] {{'0', '9'}, {'a', 'c'}, {'A', 'C'}, {'e', 'f'}, {'E', 'F'}}) {
            r.bytes(u, range[0], range[1], notD);
        }
        r.bytes(u, 'd', 'd', d);
        r.bytes(u, 'D', 'D', d);
        int second = r.state();
        hexDigit(r, notD, second);
        r.bytes(d, '0', '7', second);
        int third = r.state();
        hexDigit(r, second, third);
        hexDigit(r, third, end);
        return end;
    }

    private static void hexDigit(GrammarBuilder.Rule r, int from, int to) {
        r.bytes(from, '0', '9', to);
        r.bytes(from, 'a', 'f', to);
        r.bytes(from, 'A', 'F', to);
    }

    private int object(GrammarBuilder.Rule r, int at, JsonNode schema, String path) {
        JsonNode properties = schema.get("properties");
        JsonNode additional = schema.get("additionalProperties");
        JsonNode required = schema.get("required");
        Set<String> requiredNames = new LinkedHashSet<>();
        if (required != null) {
            if (!required.isArray()) {
                throw error(path + "/required", "'required' must be an array of property names");
            }
            for (JsonNode name : required) {
                if (!name.isTextual()) {
                    throw error(path + "/required", "'required' must be an array of property names");
                }
                if (properties == null || !properties.has(name.textValue())) {
                    throw error(path + "/required", "the required property '" + name.textValue()
                            + "' has no schema in 'properties'");
                }
                requiredNames.add(name.textValue());
            }
        }
        if (additional != null && !additional.isBoolean() && !additional.isObject()) {
            throw error(path + "/additionalProperties", "'additionalProperties' must be a boolean or a schema");
        }
        if (properties != null && !properties.isObject()) {
            throw error(path + "/properties", "'properties' must be an object of schemas");
        }
        boolean noProperties = properties == null || properties.isEmpty();
        if (noProperties && (additional == null || additional.equals(JSON.getNodeFactory().booleanNode(true)))) {
            int end = r.state();
            r.call(at, objectRule(), end);
            return end;
        }
        int open = r.literal(at, ascii("{"));
        int close = r.state();
        if (noProperties && additional.isObject()) {
            // A map: any keys, each value of the additionalProperties schema.
            mapMembers(r, open, close, (rule, from) -> emit(rule, from, additional, path + "/additionalProperties"));
            return r.literal(close, ascii("}"));
        }
        int first = open;  // no member written yet
        int later = -1;    // a member written: the next needs a comma
        if (properties != null) {
            for (Iterator<Map.Entry<String, JsonNode>> it = properties.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> p = it.next();
                byte[] key = concat(compact(JSON.getNodeFactory().textNode(p.getKey())), ascii(":"));
                int value = r.state();
                r.epsilon(optionalSpace(r, r.literal(first, key)), value);
                if (later >= 0) {
                    int afterComma = optionalSpace(r, r.literal(later, ascii(",")));
                    r.epsilon(optionalSpace(r, r.literal(afterComma, key)), value);
                }
                int valueEnd = emit(r, value, p.getValue(), path + "/properties/" + p.getKey());
                int nextFirst = r.state();
                int nextLater = r.state();
                r.epsilon(valueEnd, nextLater);
                if (!requiredNames.contains(p.getKey())) {
                    r.epsilon(first, nextFirst);
                    if (later >= 0) {
                        r.epsilon(later, nextLater);
                    }
                }
                first = nextFirst;
                later = nextLater;
            }
        }
        r.epsilon(first, close);
        if (later >= 0) {
            r.epsilon(later, close);
        }
        return r.literal(close, ascii("}"));
    }

    /** Emits one value from a state, returning the state after it. */
    private interface ValueEmitter {
        int emit(GrammarBuilder.Rule r, int at);
    }

    /** Members "key": value separated by commas, between open and close; the value emitted once. */
    private void mapMembers(GrammarBuilder.Rule r, int open, int close, ValueEmitter value) {
        int valueStart = r.state();
        int afterMember = r.state();
        r.epsilon(open, close);
        r.epsilon(afterMember, close);
        int key = r.state();
        r.call(open, stringRule(), key);
        r.epsilon(optionalSpace(r, r.literal(key, ascii(":"))), valueStart);
        int comma = optionalSpace(r, r.literal(afterMember, ascii(",")));
        int key2 = r.state();
        r.call(comma, stringRule(), key2);
        r.epsilon(optionalSpace(r, r.literal(key2, ascii(":"))), valueStart);
        r.epsilon(value.emit(r, valueStart), afterMember);
    }

    private int array(GrammarBuilder.Rule r, int at, JsonNode schema, String path) {
        JsonNode items = schema.get("items");
        JsonNode prefix = schema.get("prefixItems");
        if (prefix != null && (!prefix.isArray() || prefix.isEmpty())) {
            throw error(path + "/prefixItems", "'prefixItems' must be a non-empty array of schemas");
        }
        if (items != null && !items.isObject() && !items.isBoolean()) {
            throw error(path + "/items", "'items' must be a schema (the tuple form is 'prefixItems')");
        }
        int prefixLength = prefix == null ? 0 : prefix.size();
        // items: false after a prefix allows no more items (alone, only the empty array).
        boolean restAllowed = items == null || !items.isBoolean() || items.booleanValue();
        int min = bound(schema, "minItems", 0, path);
        int max = bound(schema, "maxItems", -1, path);
        if (!restAllowed) {
            max = max < 0 ? prefixLength : Math.min(max, prefixLength);
        }
        if (max >= 0 && max < min) {
            throw error(path, "'maxItems' " + max + " is below 'minItems' " + min
                    + (restAllowed ? "" : " (with 'items': false, at most the " + prefixLength + " of 'prefixItems')"));
        }
        if (Math.max(Math.max(min, max), prefixLength) > MAX_BOUND) {
            throw error(path, "item counts over " + MAX_BOUND + " are not supported");
        }
        if (prefixLength == 0 && restAllowed && (items == null || items.isBoolean()) && min == 0 && max < 0) {
            int end = r.state();
            r.call(at, arrayRule(), end);
            return end;
        }
        ValueEmitter rest = items == null || items.isBoolean() ? this::anyValue
                : (rule, from) -> emit(rule, from, items, path + "/items");
        int open = r.literal(at, ascii("["));
        int close = r.state();
        if (max == 0) {
            r.epsilon(open, close);
            return r.literal(close, ascii("]"));
        }
        if (prefixLength == 0 && min <= 1 && max < 0) {
            listItems(r, open, close, rest, min == 0);
            return r.literal(close, ascii("]"));
        }
        // Bounded (or a tuple): the items written out, the first min required, the rest up to max
        // optional; past the prefix each is the rest's schema, and an unbounded tail loops.
        int s = open;
        int count = Math.max(min, max < 0 ? Math.max(min, prefixLength) + 1 : max);
        for (int i = 0; i < count; i++) {
            if (i >= min) {
                r.epsilon(s, close);
            }
            int from = i == 0 ? s : optionalSpace(r, r.literal(s, ascii(",")));
            ValueEmitter item = i < prefixLength
                    ? itemOf(prefix.get(i), path + "/prefixItems/" + i) : rest;
            if (max < 0 && i == count - 1) {
                int loopStart = r.state();
                r.epsilon(from, loopStart);
                int after = item.emit(r, loopStart);
                r.epsilon(after, close);
                r.epsilon(optionalSpace(r, r.literal(after, ascii(","))), loopStart);
                return r.literal(close, ascii("]"));
            }
            s = item.emit(r, from);
        }
        r.epsilon(s, close);
        return r.literal(close, ascii("]"));
    }

    private ValueEmitter itemOf(JsonNode schema, String path) {
        return (rule, from) -> emit(rule, from, schema, path);
    }

    /** Items separated by commas, between open and close; the item emitted once. */
    private static void listItems(GrammarBuilder.Rule r, int open, int close, ValueEmitter item, boolean mayBeEmpty) {
        int itemStart = r.state();
        r.epsilon(open, itemStart);
        if (mayBeEmpty) {
            r.epsilon(open, close);
        }
        int after = item.emit(r, itemStart);
        r.epsilon(after, close);
        r.epsilon(optionalSpace(r, r.literal(after, ascii(","))), itemStart);
    }

    // ---- any JSON value ----------------------------------------------------------------------

    /** Any JSON value: objects, arrays and strings through their shared rules, the rest in place. */
    private int anyValue(GrammarBuilder.Rule r, int at) {
        int end = r.state();
        r.call(at, objectRule(), end);
        r.call(at, arrayRule(), end);
        r.call(at, stringRule(), end);
        r.epsilon(RegexCompiler.emit(NUMBER, "number", r, at, false), end);
        for (String word : new String[] {"true", "false", "null"}) {
            r.epsilon(r.literal(at, ascii(word)), end);
        }
        return end;
    }

    private GrammarBuilder.Rule stringRule() {
        if (stringRule == null) {
            stringRule = builder.rule("string");
            GrammarBuilder.Rule s = stringRule;
            int open = s.literal(s.start(), ascii("\""));
            int loop = s.state();
            s.epsilon(open, loop);
            s.epsilon(stringChar(s, loop), loop);
            s.epsilon(s.literal(loop, ascii("\"")), s.end());
        }
        return stringRule;
    }

    private GrammarBuilder.Rule objectRule() {
        if (objectRule == null) {
            objectRule = builder.rule("object");
            GrammarBuilder.Rule o = objectRule;
            int open = o.literal(o.start(), ascii("{"));
            int close = o.state();
            mapMembers(o, open, close, this::anyValue);
            o.epsilon(o.literal(close, ascii("}")), o.end());
        }
        return objectRule;
    }

    private GrammarBuilder.Rule arrayRule() {
        if (arrayRule == null) {
            arrayRule = builder.rule("array");
            GrammarBuilder.Rule a = arrayRule;
            int open = a.literal(a.start(), ascii("["));
            int close = a.state();
            listItems(a, open, close, this::anyValue, true);
            a.epsilon(a.literal(close, ascii("]")), a.end());
        }
        return arrayRule;
    }

    // ---- helpers -----------------------------------------------------------------------------

    private static int optionalSpace(GrammarBuilder.Rule r, int at) {
        int end = r.state();
        r.bytes(at, ' ', ' ', end);
        r.epsilon(at, end);
        return end;
    }

    private static String text(JsonNode node, String path) {
        if (!node.isTextual()) {
            throw error(path, "must be a string");
        }
        return node.textValue();
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
