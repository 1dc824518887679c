package ai.kiln.grammar;

import java.util.ArrayList;
import java.util.List;

/**
 * Regular expressions (the common subset of Python's re and ECMAScript: literals, escapes, {@code
 * .}, classes, groups, alternation and greedy or lazy quantifiers) as automata over bytes. A
 * pattern matches whole texts: a leading {@code ^} and a trailing {@code $} are accepted and mean
 * nothing more. Text is matched as UTF-8, or inside a JSON string literal ({@code jsonString}),
 * where the characters JSON must escape are written as their escapes. Backreferences, lookaround,
 * word boundaries, inline flags and possessive quantifiers are refused by name.
 */
final class RegexCompiler {

    /** The largest count a quantifier may give. */
    static final int MAX_REPEAT = 1000;

    private sealed interface Node permits Chars, Seq, Alt, Repeat {
    }

    private record Chars(CodePointSet set) implements Node {
    }

    private record Seq(List<Node> items) implements Node {
    }

    private record Alt(List<Node> options) implements Node {
    }

    private record Repeat(Node body, int min, int max) implements Node { // max -1: unbounded
    }

    private final String pattern;
    private final String where; // how errors name the pattern
    private int pos;

    private RegexCompiler(String pattern, String where) {
        this.pattern = pattern;
        this.where = where;
    }

    /** Emits {@code pattern} into {@code rule} from {@code at}; returns the state after a match. */
    static int emit(String pattern, String where, GrammarBuilder.Rule rule, int at, boolean jsonString) {
        RegexCompiler c = new RegexCompiler(pattern, where);
        Node node = c.parseWhole();
        return emit(node, rule, at, jsonString);
    }

    /** Checks the pattern's syntax alone. */
    static void check(String pattern, String where) {
        new RegexCompiler(pattern, where).parseWhole();
    }

    private Node parseWhole() {
        if (pattern.startsWith("^")) {
            pos = 1;
        }
        Node node = parseAlt();
        if (pos < pattern.length() && pattern.charAt(pos) == '$' && pos == pattern.length() - 1) {
            pos++;
        }
        if (pos < pattern.length()) {
            throw error(pattern.charAt(pos) == ')' ? "unbalanced ')'" : "unexpected '" + pattern.charAt(pos) + "'");
        }
        return node;
    }

    private GrammarException error(String problem) {
        return new GrammarException(where + ": " + problem + " at offset " + pos + " of the pattern");
    }

    private Node parseAlt() {
        List<Node> options = new ArrayList<>();
        options.add(parseSeq());
        while (pos < pattern.length() && pattern.charAt(pos) == '|') {
            pos++;
            options.add(parseSeq());
        }
        return options.size() == 1 ? options.get(0) : new Alt(options);
    }

    private Node parseSeq() {
        List<Node> items = new ArrayList<>();
        while (pos < pattern.length()) {
            char c = pattern.charAt(pos);
            if (c == '|' || c == ')') {
                break;
            }
            if (c == '$' && pos == pattern.length() - 1) {
                break; // the end anchor, taken by parseWhole
            }
            items.add(parseQuantified());
        }
        return items.size() == 1 ? items.get(0) : new Seq(items);
    }

    private Node parseQuantified() {
        Node atom = parseAtom();
        while (pos < pattern.length()) {
            char c = pattern.charAt(pos);
            int min;
            int max;
            if (c == '*') {
                min = 0;
                max = -1;
                pos++;
            } else if (c == '+') {
                min = 1;
                max = -1;
                pos++;
            } else if (c == '?') {
                min = 0;
                max = 1;
                pos++;
            } else if (c == '{' && isCount()) {
                pos++;
                min = number();
                max = min;
                if (pattern.charAt(pos) == ',') {
                    pos++;
                    max = pattern.charAt(pos) == '}' ? -1 : number();
                }
                pos++; // '}'
                if (max >= 0 && max < min) {
                    throw error("a quantifier {" + min + "," + max + "} with max < min");
                }
            } else {
                break;
            }
            if (pos < pattern.length() && pattern.charAt(pos) == '?') {
                pos++; // lazy: the same language
            } else if (pos < pattern.length() && pattern.charAt(pos) == '+') {
                throw error("possessive quantifiers are not supported");
            }
            atom = new Repeat(atom, min, max);
        }
        return atom;
    }

    /** Whether a '{' at pos starts a quantifier {n}, {n,} or {n,m} (else it is a literal, as in Python). */
    private boolean isCount() {
        int i = pos + 1;
        int digits = 0;
        while (i < pattern.length() && Character.isDigit(pattern.charAt(i))) {
            i++;
            digits++;
        }
        if (digits == 0 || i >= pattern.length()) {
            return false;
        }
        if (pattern.charAt(i) == ',') {
            i++;
            while (i < pattern.length() && Character.isDigit(pattern.charAt(i))) {
                i++;
            }
        }
        return i < pattern.length() && pattern.charAt(i) == '}';
    }

    private int number() {
        int start = pos;
        while (Character.isDigit(pattern.charAt(pos))) {
            pos++;
        }
        String digits = pattern.substring(start, pos);
        if (digits.length() > 6 || Integer.parseInt(digits) > MAX_REPEAT) {
            throw error("a repetition count over " + MAX_REPEAT);
        }
        return Integer.parseInt(digits);
    }

    private Node parseAtom() {
        char c = pattern.charAt(pos);
        switch (c) {
            case '(' -> {
                pos++;
                if (pattern.startsWith("?:", pos)) {
                    pos += 2;
                } else if (pattern.startsWith("?P<", pos) || (pattern.startsWith("?<", pos)
                        && pos + 2 < pattern.length() && pattern.charAt(pos + 2) != '=' && pattern.charAt(pos + 2) != '!')) {
                    int close = pattern.indexOf('>', pos);
                    if (close < 0) {
                        throw error("an unterminated group name");
                    }
                    pos = close + 1;
                } else if (pos < pattern.length() && pattern.charAt(pos) == '?') {
                    throw error("lookaround, inline flags and other '(?' groups are not supported");
                }
                Node inner = parseAlt();
                if (pos >= pattern.length() || pattern.charAt(pos) != ')') {
                    throw error("an unclosed '('");
                }
                pos++;
                return inner;
            }
            case '[' -> {
                return new Chars(parseClass());
            }
            case '.' -> {
                pos++;
                return new Chars(CodePointSet.ANY.minus(CodePointSet.of('\n')));
            }
            case '\\' -> {
                return new Chars(parseEscape(false));
            }
            case '*', '+', '?' -> throw error("a quantifier with nothing to repeat");
            case '^', '$' -> throw error("anchors are supported only at the start (^) and end ($)");
            default -> {
                int cp = pattern.codePointAt(pos);
                pos += Character.charCount(cp);
                return new Chars(CodePointSet.of(cp));
            }
        }
    }

    private CodePointSet parseClass() {
        pos++; // '['
        boolean negated = false;
        if (pos < pattern.length() && pattern.charAt(pos) == '^') {
            negated = true;
            pos++;
        }
        CodePointSet set = CodePointSet.ofRanges();
        boolean first = true;
        while (true) {
            if (pos >= pattern.length()) {
                throw error("an unclosed '['");
            }
            char c = pattern.charAt(pos);
            if (c == ']' && !first) {
                pos++;
                break;
            }
            first = false;
            CodePointSet item;
            int lo;
            if (c == '\\') {
                item = parseEscape(true);
                lo = singleOrMinus(item);
            } else {
                lo = pattern.codePointAt(pos);
                pos += Character.charCount(lo);
                item = CodePointSet.of(lo);
            }
            if (lo >= 0 && pos + 1 < pattern.length() && pattern.charAt(pos) == '-' && pattern.charAt(pos + 1) != ']') {
                pos++;
                int hi;
                if (pattern.charAt(pos) == '\\') {
                    hi = singleOrMinus(parseEscape(true));
                    if (hi < 0) {
                        throw error("a class range ending in a class escape");
                    }
                } else {
                    hi = pattern.codePointAt(pos);
                    pos += Character.charCount(hi);
                }
                if (hi < lo) {
                    throw error("a class range out of order");
                }
                item = CodePointSet.range(lo, hi);
            }
            set = set.union(item);
        }
        return negated ? set.complement() : set;
    }

    /** The one code point of a set, or -1 for a set of several (a class escape such as \d). */
    private static int singleOrMinus(CodePointSet set) {
        int[] r = set.ranges();
        return r.length == 2 && r[0] == r[1] ? r[0] : -1;
    }

    private CodePointSet parseEscape(boolean inClass) {
        pos++; // '\'
        if (pos >= pattern.length()) {
            throw error("a trailing backslash");
        }
        char c = pattern.charAt(pos++);
        return switch (c) {
            case 'd' -> digits();
            case 'D' -> digits().complement();
            case 'w' -> word();
            case 'W' -> word().complement();
            case 's' -> space();
            case 'S' -> space().complement();
            case 'n' -> CodePointSet.of('\n');
            case 't' -> CodePointSet.of('\t');
            case 'r' -> CodePointSet.of('\r');
            case 'f' -> CodePointSet.of('\f');
            case 'v' -> CodePointSet.of(0x0B);
            case '0' -> CodePointSet.of(0);
            case 'x' -> CodePointSet.of(hex(2));
            case 'u' -> CodePointSet.of(hex(4));
            case 'b' -> {
                if (inClass) {
                    yield CodePointSet.of('\b');
                }
                pos--;
                throw error("word boundaries (\\b) are not supported");
            }
            default -> {
                if (Character.isLetterOrDigit(c)) {
                    pos--;
                    throw error("the escape \\" + c + " is not supported");
                }
                yield CodePointSet.of(c);
            }
        };
    }

    private int hex(int digits) {
        if (pos + digits > pattern.length()) {
            throw error("a short hexadecimal escape");
        }
        try {
            int v = Integer.parseInt(pattern.substring(pos, pos + digits), 16);
            pos += digits;
            return v;
        } catch (NumberFormatException e) {
            throw error("a bad hexadecimal escape");
        }
    }

    private static CodePointSet digits() {
        return CodePointSet.range('0', '9');
    }

    private static CodePointSet word() {
        return CodePointSet.ofRanges('0', '9', 'A', 'Z', 'a', 'z', '_', '_');
    }

    private static CodePointSet space() {
        return CodePointSet.ofRanges(' ', ' ', '\t', '\r', 0x0B, 0x0C);
    }

    // ---- emission ----------------------------------------------------------------------------

    private static int emit(Node node, GrammarBuilder.Rule rule, int at, boolean json) {
        if (node instanceof Chars chars) {
            return chars(rule, at, chars.set(), json);
        }
        if (node instanceof Seq seq) {
            int s = at;
            for (Node item : seq.items()) {
                s = emit(item, rule, s, json);
            }
            return s;
        }
        if (node instanceof Alt alt) {
            int end = rule.state();
            for (Node option : alt.options()) {
                rule.epsilon(emit(option, rule, at, json), end);
            }
            return end;
        }
        Repeat rep = (Repeat) node;
        int s = at;
        for (int i = 0; i < rep.min(); i++) {
            s = emit(rep.body(), rule, s, json);
        }
        if (rep.max() < 0) {
            int loop = rule.state();
            rule.epsilon(s, loop);
            rule.epsilon(emit(rep.body(), rule, loop, json), loop);
            return loop;
        }
        int end = rule.state();
        for (int i = rep.min(); i < rep.max(); i++) {
            rule.epsilon(s, end);
            s = emit(rep.body(), rule, s, json);
        }
        rule.epsilon(s, end);
        return end;
    }

    /**
     * One character of {@code set} from {@code at}: its UTF-8 bytes, or inside a JSON string
     * ({@code json}) the escape of a quote, a backslash or a control character; returns the state after.
     */
    static int chars(GrammarBuilder.Rule rule, int at, CodePointSet set, boolean json) {
        int end = rule.state();
        CodePointSet plain = json ? set.minus(JSON_ESCAPED) : set;
        for (int[] run : plain.utf8Runs()) {
            rule.epsilon(rule.byteRanges(at, run), end);
        }
        if (json) {
            int[] r = set.ranges();
            for (int k = 0; k < r.length; k += 2) {
                for (int c = r[k]; c <= Math.min(r[k + 1], 0x5C); c++) {
                    if (JSON_ESCAPED.contains(c)) {
                        rule.epsilon(rule.literal(at, jsonEscape(c)), end);
                    }
                }
            }
        }
        return end;
    }

    /** What a JSON string must escape: the quote, the backslash and the control characters. */
    static final CodePointSet JSON_ESCAPED = CodePointSet.ofRanges(0, 0x1F, '"', '"', '\\', '\\');

    private static byte[] jsonEscape(int c) {
        String s = switch (c) {
            case '"' -> "\\\"";
            case '\\' -> "\\\\";
            case '\n' -> "\\n";
            case '\t' -> "\\t";
            case '\r' -> "\\r";
            case '\b' -> "\\b";
            case '\f' -> "\\f";
            default -> String.format("\\u%04x", c);
        };
        return s.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    }
}
