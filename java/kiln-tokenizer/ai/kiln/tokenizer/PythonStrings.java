package ai.kiln.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Python's str methods, as chat templates call them ({@code message.content.startswith(...)},
 * {@code .split('</think>')[-1].lstrip('\n')}, ...). Java's String has none of them, and some
 * same-named Java methods differ (Java's split takes a regex and drops trailing empty strings).
 */
final class PythonStrings {
    private PythonStrings() {
    }

    /** Python's str.isspace for one code point: bidi class WS, B or S, or category Zs. */
    static boolean isSpace(int cp) {
        byte direction = Character.getDirectionality(cp);
        return direction == Character.DIRECTIONALITY_WHITESPACE
                || direction == Character.DIRECTIONALITY_PARAGRAPH_SEPARATOR
                || direction == Character.DIRECTIONALITY_SEGMENT_SEPARATOR
                || Character.getType(cp) == Character.SPACE_SEPARATOR;
    }

    /** Whether {@code name} with {@code argumentCount} arguments is a str method implemented here. */
    static boolean supports(String name, int argumentCount) {
        switch (name) {
            case "strip": case "lstrip": case "rstrip":
                return argumentCount <= 1;
            case "split": case "rsplit":
                return argumentCount <= 2;
            case "startswith": case "endswith":
                return argumentCount >= 1 && argumentCount <= 3;
            case "replace":
                return argumentCount == 2 || argumentCount == 3;
            case "find": case "rfind": case "count": case "index":
                return argumentCount >= 1 && argumentCount <= 3;
            case "upper": case "lower": case "title": case "capitalize": case "isdigit": case "isalpha":
            case "isalnum": case "isspace": case "isupper": case "islower":
                return argumentCount == 0;
            case "join":
                return argumentCount == 1;
            default:
                return false;
        }
    }

    /** Calls a method for which {@link #supports} is true. Arguments are Jinjava values. */
    static Object call(String self, String name, Object[] args) {
        switch (name) {
            case "strip":
                return strip(self, charsArgument(args), true, true);
            case "lstrip":
                return strip(self, charsArgument(args), true, false);
            case "rstrip":
                return strip(self, charsArgument(args), false, true);
            case "split":
                return split(self, separatorArgument(args), maxSplitArgument(args));
            case "rsplit":
                return rsplit(self, separatorArgument(args), maxSplitArgument(args));
            case "startswith":
            case "endswith": {
                String region = slice(self, args, 1);
                List<String> candidates = args[0] instanceof Iterable<?> many ? strings(many) : List.of(string(args[0]));
                for (String candidate : candidates) {
                    if (name.equals("startswith") ? region.startsWith(candidate) : region.endsWith(candidate)) {
                        return true;
                    }
                }
                return false;
            }
            case "replace": {
                String old = string(args[0]);
                String replacement = string(args[1]);
                int count = args.length == 3 ? integer(args[2]) : -1;
                return replace(self, old, replacement, count);
            }
            case "find":
            case "index": {
                int start = args.length > 1 ? clampIndex(integer(args[1]), self.length()) : 0;
                int end = args.length > 2 ? clampIndex(integer(args[2]), self.length()) : self.length();
                int at = self.substring(0, Math.max(start, end)).indexOf(string(args[0]), start);
                if (at < 0 && name.equals("index")) {
                    throw new IllegalArgumentException("substring not found");
                }
                return at;
            }
            case "rfind": {
                int start = args.length > 1 ? clampIndex(integer(args[1]), self.length()) : 0;
                int end = args.length > 2 ? clampIndex(integer(args[2]), self.length()) : self.length();
                String needle = string(args[0]);
                int at = self.substring(0, Math.max(start, end)).lastIndexOf(needle);
                return at >= start ? at : -1;
            }
            case "count": {
                String region = slice(self, args, 1);
                String needle = string(args[0]);
                if (needle.isEmpty()) {
                    return region.codePointCount(0, region.length()) + 1;
                }
                int count = 0;
                for (int at = region.indexOf(needle); at >= 0; at = region.indexOf(needle, at + needle.length())) {
                    count++;
                }
                return count;
            }
            case "upper":
                return self.toUpperCase(Locale.ROOT);
            case "lower":
                return self.toLowerCase(Locale.ROOT);
            case "title":
                return title(self);
            case "capitalize":
                return self.isEmpty() ? self
                        : new StringBuilder().appendCodePoint(Character.toTitleCase(self.codePointAt(0)))
                        .append(self.substring(Character.charCount(self.codePointAt(0))).toLowerCase(Locale.ROOT)).toString();
            case "isdigit":
                return !self.isEmpty() && self.codePoints().allMatch(Character::isDigit);
            case "isalpha":
                return !self.isEmpty() && self.codePoints().allMatch(Character::isLetter);
            case "isalnum":
                return !self.isEmpty() && self.codePoints().allMatch(Character::isLetterOrDigit);
            case "isspace":
                return !self.isEmpty() && self.codePoints().allMatch(PythonStrings::isSpace);
            case "isupper":
                return self.codePoints().anyMatch(Character::isUpperCase) && self.codePoints().noneMatch(Character::isLowerCase);
            case "islower":
                return self.codePoints().anyMatch(Character::isLowerCase) && self.codePoints().noneMatch(Character::isUpperCase);
            case "join": {
                if (!(args[0] instanceof Iterable<?> parts)) {
                    throw new IllegalArgumentException("join() needs a list of strings");
                }
                return String.join(self, strings(parts));
            }
            default:
                throw new IllegalArgumentException("unsupported str method " + name);
        }
    }

    /** Python's str.strip family: {@code chars} null means whitespace. */
    static String strip(String text, String chars, boolean left, boolean right) {
        int start = 0;
        int end = text.length();
        if (left) {
            while (start < end) {
                int cp = text.codePointAt(start);
                if (!stripped(cp, chars)) {
                    break;
                }
                start += Character.charCount(cp);
            }
        }
        if (right) {
            while (end > start) {
                int cp = text.codePointBefore(end);
                if (!stripped(cp, chars)) {
                    break;
                }
                end -= Character.charCount(cp);
            }
        }
        return text.substring(start, end);
    }

    private static boolean stripped(int cp, String chars) {
        return chars == null ? isSpace(cp) : chars.indexOf(new String(Character.toChars(cp))) >= 0;
    }

    static List<String> split(String text, String separator, int maxSplit) {
        List<String> parts = new ArrayList<>();
        if (separator == null) {
            int i = 0;
            int n = text.length();
            while (true) {
                while (i < n && isSpace(text.codePointAt(i))) {
                    i += Character.charCount(text.codePointAt(i));
                }
                if (i >= n) {
                    break;
                }
                if (maxSplit >= 0 && parts.size() == maxSplit) {
                    // The remainder keeps its trailing whitespace, as in Python.
                    parts.add(text.substring(i));
                    break;
                }
                int start = i;
                while (i < n && !isSpace(text.codePointAt(i))) {
                    i += Character.charCount(text.codePointAt(i));
                }
                parts.add(text.substring(start, i));
            }
            return parts;
        }
        if (separator.isEmpty()) {
            throw new IllegalArgumentException("empty separator");
        }
        int from = 0;
        int at;
        while ((maxSplit < 0 || parts.size() < maxSplit) && (at = text.indexOf(separator, from)) >= 0) {
            parts.add(text.substring(from, at));
            from = at + separator.length();
        }
        parts.add(text.substring(from));
        return parts;
    }

    static List<String> rsplit(String text, String separator, int maxSplit) {
        if (maxSplit < 0) {
            return split(text, separator, maxSplit);
        }
        List<String> reversedParts = new ArrayList<>();
        if (separator == null) {
            int end = text.length();
            while (true) {
                while (end > 0 && isSpace(text.codePointBefore(end))) {
                    end -= Character.charCount(text.codePointBefore(end));
                }
                if (end <= 0) {
                    break;
                }
                if (reversedParts.size() == maxSplit) {
                    reversedParts.add(text.substring(0, end));
                    break;
                }
                int stop = end;
                while (end > 0 && !isSpace(text.codePointBefore(end))) {
                    end -= Character.charCount(text.codePointBefore(end));
                }
                reversedParts.add(text.substring(end, stop));
            }
        } else {
            if (separator.isEmpty()) {
                throw new IllegalArgumentException("empty separator");
            }
            int end = text.length();
            int at;
            while (reversedParts.size() < maxSplit && (at = text.lastIndexOf(separator, end - separator.length())) >= 0) {
                reversedParts.add(text.substring(at + separator.length(), end));
                end = at;
            }
            reversedParts.add(text.substring(0, end));
        }
        List<String> parts = new ArrayList<>(reversedParts.size());
        for (int i = reversedParts.size() - 1; i >= 0; i--) {
            parts.add(reversedParts.get(i));
        }
        return parts;
    }

    private static String replace(String text, String old, String replacement, int count) {
        if (count < 0) {
            return text.replace(old, replacement);
        }
        StringBuilder out = new StringBuilder();
        int from = 0;
        int done = 0;
        if (old.isEmpty()) {
            // Python inserts the replacement between characters, up to count times.
            int i = 0;
            while (i <= text.length()) {
                if (done < count) {
                    out.append(replacement);
                    done++;
                }
                if (i == text.length()) {
                    break;
                }
                int cp = text.codePointAt(i);
                out.appendCodePoint(cp);
                i += Character.charCount(cp);
            }
            return out.toString();
        }
        int at;
        while (done < count && (at = text.indexOf(old, from)) >= 0) {
            out.append(text, from, at).append(replacement);
            from = at + old.length();
            done++;
        }
        return out.append(text.substring(from)).toString();
    }

    private static String title(String text) {
        StringBuilder out = new StringBuilder(text.length());
        boolean previousCased = false;
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            boolean cased = Character.isUpperCase(cp) || Character.isLowerCase(cp) || Character.isTitleCase(cp);
            out.appendCodePoint(previousCased ? Character.toLowerCase(cp) : Character.toTitleCase(cp));
            previousCased = cased;
        }
        return out.toString();
    }

    private static String slice(String text, Object[] args, int firstIndexArgument) {
        int start = args.length > firstIndexArgument ? clampIndex(integer(args[firstIndexArgument]), text.length()) : 0;
        int end = args.length > firstIndexArgument + 1 ? clampIndex(integer(args[firstIndexArgument + 1]), text.length()) : text.length();
        return start >= end ? "" : text.substring(start, end);
    }

    private static int clampIndex(int index, int length) {
        if (index < 0) {
            index += length;
        }
        return Math.max(0, Math.min(length, index));
    }

    private static String charsArgument(Object[] args) {
        return args.length == 0 || args[0] == null ? null : string(args[0]);
    }

    private static String separatorArgument(Object[] args) {
        return args.length == 0 || args[0] == null ? null : string(args[0]);
    }

    private static int maxSplitArgument(Object[] args) {
        return args.length < 2 ? -1 : integer(args[1]);
    }

    private static String string(Object value) {
        if (value instanceof String s) {
            return s;
        }
        throw new IllegalArgumentException("expected a string argument, got " + (value == null ? "none" : value.getClass().getSimpleName()));
    }

    private static int integer(Object value) {
        if (value instanceof Number n) {
            return n.intValue();
        }
        throw new IllegalArgumentException("expected an integer argument, got " + value);
    }

    private static List<String> strings(Iterable<?> values) {
        List<String> out = new ArrayList<>();
        for (Object value : values) {
            out.add(string(value));
        }
        return out;
    }
}
