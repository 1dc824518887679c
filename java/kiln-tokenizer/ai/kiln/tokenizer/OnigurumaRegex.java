package ai.kiln.tokenizer;

import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Translates the regular expressions in tokenizer.json, written for Oniguruma (Ruby syntax, the
 * engine Hugging Face tokenizers uses), into java.util.regex patterns with the same meaning.
 *
 * <p>Differences handled: {@code \s \w \d \b} and case-insensitivity are Unicode-aware in
 * Oniguruma ({@link Pattern#UNICODE_CHARACTER_CLASS}); {@code ^ $} are always line anchors in Ruby
 * syntax and only {@code \n} ends a line ({@link Pattern#MULTILINE}, {@link Pattern#UNIX_LINES});
 * the inline option {@code m} means "dot matches newline" ({@code s} in Java); {@code \h} is a hex
 * digit and {@code \v} a vertical tab (both mean other things in Java); {@code \p{^X}} is a negated
 * property; long property names ({@code \p{Letter}}) become their short forms. Possessive
 * quantifiers, atomic groups, lookaround and {@code (?i:...)} groups carry over as written.
 * Constructs with no Java equivalent ({@code \K}, absence operators, conditionals, subexpression
 * calls) are rejected rather than guessed.
 */
final class OnigurumaRegex {
    static final int FLAGS = Pattern.UNICODE_CHARACTER_CLASS | Pattern.MULTILINE | Pattern.UNIX_LINES;

    private static final Map<String, String> PROPERTY_NAMES = Map.ofEntries(
            Map.entry("letter", "L"), Map.entry("uppercaseletter", "Lu"), Map.entry("lowercaseletter", "Ll"),
            Map.entry("titlecaseletter", "Lt"), Map.entry("modifierletter", "Lm"), Map.entry("otherletter", "Lo"),
            Map.entry("mark", "M"), Map.entry("combiningmark", "M"), Map.entry("nonspacingmark", "Mn"),
            Map.entry("spacingmark", "Mc"), Map.entry("enclosingmark", "Me"),
            Map.entry("number", "N"), Map.entry("decimalnumber", "Nd"), Map.entry("letternumber", "Nl"),
            Map.entry("othernumber", "No"), Map.entry("punctuation", "P"), Map.entry("punct", "P"),
            Map.entry("connectorpunctuation", "Pc"), Map.entry("dashpunctuation", "Pd"),
            Map.entry("openpunctuation", "Ps"), Map.entry("closepunctuation", "Pe"),
            Map.entry("initialpunctuation", "Pi"), Map.entry("finalpunctuation", "Pf"),
            Map.entry("otherpunctuation", "Po"), Map.entry("symbol", "S"), Map.entry("mathsymbol", "Sm"),
            Map.entry("currencysymbol", "Sc"), Map.entry("modifiersymbol", "Sk"), Map.entry("othersymbol", "So"),
            Map.entry("separator", "Z"), Map.entry("spaceseparator", "Zs"), Map.entry("lineseparator", "Zl"),
            Map.entry("paragraphseparator", "Zp"), Map.entry("other", "C"), Map.entry("control", "Cc"),
            Map.entry("cntrl", "Cc"), Map.entry("format", "Cf"), Map.entry("surrogate", "Cs"),
            Map.entry("privateuse", "Co"), Map.entry("unassigned", "Cn"),
            Map.entry("alpha", "IsAlphabetic"), Map.entry("alphabetic", "IsAlphabetic"),
            Map.entry("digit", "Nd"), Map.entry("space", "IsWhite_Space"), Map.entry("whitespace", "IsWhite_Space"),
            Map.entry("white_space", "IsWhite_Space"), Map.entry("upper", "IsUppercase"),
            Map.entry("uppercase", "IsUppercase"), Map.entry("lower", "IsLowercase"),
            Map.entry("lowercase", "IsLowercase"), Map.entry("any", "IsAssigned"));
    private static final java.util.Set<String> SHORT_CATEGORIES = java.util.Set.of(
            "L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc", "Pd",
            "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf",
            "Cs", "Co", "Cn", "LC");

    private OnigurumaRegex() {
    }

    /** Compiles an Oniguruma pattern; IllegalArgumentException explains what cannot be translated. */
    static Pattern compile(String onigurumaPattern) {
        String translated = translate(onigurumaPattern);
        try {
            return Pattern.compile(translated, FLAGS);
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException("regex " + quote(onigurumaPattern) + " is not valid: " + e.getDescription(), e);
        }
    }

    static String translate(String pattern) {
        StringBuilder out = new StringBuilder(pattern.length() + 16);
        int classDepth = 0;
        int i = 0;
        while (i < pattern.length()) {
            char c = pattern.charAt(i);
            if (c == '\\') {
                if (i + 1 >= pattern.length()) {
                    throw unsupported(pattern, "trailing backslash");
                }
                i = translateEscape(pattern, i, out);
                continue;
            }
            if (c == '[') {
                classDepth++;
                out.append(c);
                i++;
                // "[]" or "[^]" at the start of a class: a literal ']' in both dialects.
                if (i < pattern.length() && pattern.charAt(i) == '^') {
                    out.append('^');
                    i++;
                }
                continue;
            }
            if (c == ']' && classDepth > 0) {
                classDepth--;
                out.append(c);
                i++;
                continue;
            }
            if (c == '(' && classDepth == 0 && i + 1 < pattern.length() && pattern.charAt(i + 1) == '?') {
                i = translateGroupOpening(pattern, i, out);
                continue;
            }
            out.append(c);
            i++;
        }
        return out.toString();
    }

    private static int translateGroupOpening(String pattern, int i, StringBuilder out) {
        int j = i + 2;
        if (j >= pattern.length()) {
            throw unsupported(pattern, "unterminated group");
        }
        char kind = pattern.charAt(j);
        switch (kind) {
            case ':': case '=': case '!': case '>':
                out.append(pattern, i, j + 1);
                return j + 1;
            case '<': {
                // Lookbehind "(?<=", "(?<!" or a named group "(?<name>".
                out.append(pattern, i, j + 1);
                return j + 1;
            }
            case '#': {
                int close = pattern.indexOf(')', j);
                if (close < 0) {
                    throw unsupported(pattern, "unterminated comment group");
                }
                return close + 1;
            }
            case '~':
                throw unsupported(pattern, "absence operator (?~...)");
            case '(':
                throw unsupported(pattern, "conditional group (?(...)...)");
            default:
                break;
        }
        // Option letters: "(?imx-imx)" or "(?imx-imx:subexp)". Ruby's 'm' is Java's 's'.
        StringBuilder options = new StringBuilder();
        while (j < pattern.length()) {
            char o = pattern.charAt(j);
            if (o == 'i' || o == 'x' || o == '-') {
                options.append(o);
            } else if (o == 'm') {
                options.append('s');
            } else if (o == ':' || o == ')') {
                out.append("(?").append(options).append(o);
                return j + 1;
            } else {
                throw unsupported(pattern, "group option '" + o + "'");
            }
            j++;
        }
        throw unsupported(pattern, "unterminated group");
    }

    private static int translateEscape(String pattern, int i, StringBuilder out) {
        char e = pattern.charAt(i + 1);
        switch (e) {
            case 'h':
                out.append("[0-9a-fA-F]");
                return i + 2;
            case 'H':
                out.append("[^0-9a-fA-F]");
                return i + 2;
            case 'v':
                out.append("\\x0B");
                return i + 2;
            case 'K':
                throw unsupported(pattern, "\\K (keep)");
            case 'g':
                throw unsupported(pattern, "subexpression call \\g");
            case 'y': case 'Y':
                throw unsupported(pattern, "text segment boundary \\" + e);
            case 'O':
                throw unsupported(pattern, "\\O");
            case 'p': case 'P':
                return translateProperty(pattern, i, e == 'P', out);
            default:
                out.append('\\').append(e);
                return i + 2;
        }
    }

    private static int translateProperty(String pattern, int i, boolean negated, StringBuilder out) {
        int j = i + 2;
        if (j >= pattern.length() || pattern.charAt(j) != '{') {
            // One-letter form "\pL".
            if (j >= pattern.length()) {
                throw unsupported(pattern, "incomplete \\p");
            }
            out.append(negated ? "\\P{" : "\\p{").append(pattern.charAt(j)).append('}');
            return j + 1;
        }
        int close = pattern.indexOf('}', j);
        if (close < 0) {
            throw unsupported(pattern, "unterminated \\p{");
        }
        String name = pattern.substring(j + 1, close);
        if (name.startsWith("^")) {
            negated = !negated;
            name = name.substring(1);
        }
        out.append(negated ? "\\P{" : "\\p{").append(javaPropertyName(pattern, name)).append('}');
        return close + 1;
    }

    private static String javaPropertyName(String pattern, String name) {
        if (SHORT_CATEGORIES.contains(name)) {
            return name;
        }
        String normalized = name.replace(" ", "").replace("_", "").replace("-", "").toLowerCase(java.util.Locale.ROOT);
        String mapped = PROPERTY_NAMES.get(normalized);
        if (mapped == null && name.equalsIgnoreCase("white_space")) {
            mapped = "IsWhite_Space";
        }
        if (mapped != null) {
            return mapped;
        }
        // Otherwise it must be a script (Han, Latin, Hiragana, ...), which Java spells "IsHan".
        try {
            Character.UnicodeScript.forName(name);
            return "Is" + name;
        } catch (IllegalArgumentException notAScript) {
            throw unsupported(pattern, "Unicode property \\p{" + name + "}");
        }
    }

    private static IllegalArgumentException unsupported(String pattern, String what) {
        return new IllegalArgumentException("regex " + quote(pattern) + " uses " + what + ", which has no java.util.regex equivalent");
    }

    private static String quote(String pattern) {
        return '"' + pattern + '"';
    }
}
