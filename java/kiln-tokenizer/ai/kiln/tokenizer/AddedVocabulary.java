package ai.kiln.tokenizer;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Added tokens and how they are found in text, as Hugging Face's AddedVocabulary: matches are
 * leftmost-longest (Aho-Corasick semantics), tokens not marked "normalized" are matched in the raw
 * input first, the others in each remaining piece after normalization.
 */
final class AddedVocabulary {
    private final Map<Integer, AddedToken> byId = new HashMap<>();
    private final Map<String, AddedToken> byContent = new LinkedHashMap<>();
    /** What decoding sees for each added token id: the content, normalized for "normalized" tokens. */
    private final Map<Integer, String> decodedForm = new HashMap<>();
    private final Matcher rawMatcher;
    private final Matcher normalizedMatcher;

    AddedVocabulary(List<AddedToken> tokens, Normalizer normalizer) {
        List<AddedToken> raw = new ArrayList<>();
        List<AddedToken> normalized = new ArrayList<>();
        for (AddedToken token : tokens) {
            byId.putIfAbsent(token.id(), token);
            byContent.putIfAbsent(token.content(), token);
            (token.normalized() ? normalized : raw).add(token);
            // Hugging Face decodes a normalized added token as its normalized content: with
            // Llama 2's normalizer, "dog" decodes as "▁dog", hence " dog".
            decodedForm.putIfAbsent(token.id(), token.normalized() && normalizer != null
                    ? normalizer.normalize(token.content()) : token.content());
        }
        rawMatcher = new Matcher(raw, null);
        normalizedMatcher = new Matcher(normalized, normalizer);
    }

    AddedToken byId(int id) {
        return byId.get(id);
    }

    /** The token string that decoding uses for an added token's id, or null. */
    String decodedForm(int id) {
        return decodedForm.get(id);
    }

    AddedToken byContent(String content) {
        return byContent.get(content);
    }

    /** A piece of text, either plain (tokenId -1) or an added token already recognized. */
    record Segment(String text, int tokenId, boolean atInputStart) {
    }

    /** Splits raw input around the added tokens that match before normalization. */
    void splitRaw(String text, List<Segment> out) {
        rawMatcher.split(text, true, out);
    }

    /** Splits a normalized piece around the added tokens that match after normalization. */
    void splitNormalized(String normalizedText, boolean atInputStart, List<Segment> out) {
        normalizedMatcher.split(normalizedText, atInputStart, out);
    }

    /** A character trie over the patterns, for leftmost-longest matching. */
    private static final class Matcher {
        private static final class Node {
            final Map<Character, Node> children = new HashMap<>(4);
            AddedToken token;
        }

        private final Node root = new Node();
        private final BitSet firstChars = new BitSet(0x10000);
        private final boolean empty;

        Matcher(List<AddedToken> tokens, Normalizer normalizer) {
            boolean any = false;
            for (AddedToken token : tokens) {
                String pattern = normalizer == null ? token.content() : normalizer.normalize(token.content());
                if (pattern.isEmpty()) {
                    continue;
                }
                Node node = root;
                for (int i = 0; i < pattern.length(); i++) {
                    node = node.children.computeIfAbsent(pattern.charAt(i), c -> new Node());
                }
                if (node.token == null) {
                    node.token = token;
                }
                firstChars.set(pattern.charAt(0));
                any = true;
            }
            empty = !any;
        }

        void split(String text, boolean atInputStart, List<Segment> out) {
            if (text.isEmpty()) {
                return;
            }
            if (empty) {
                out.add(new Segment(text, -1, atInputStart));
                return;
            }
            int segmentStart = 0;
            int i = 0;
            int length = text.length();
            while (i < length) {
                if (!firstChars.get(text.charAt(i))) {
                    i++;
                    continue;
                }
                int matchEnd = -1;
                AddedToken matched = null;
                Node node = root;
                for (int j = i; j < length; j++) {
                    node = node.children.get(text.charAt(j));
                    if (node == null) {
                        break;
                    }
                    if (node.token != null) {
                        matched = node.token;
                        matchEnd = j + 1;
                    }
                }
                if (matched == null) {
                    i++;
                    continue;
                }
                int start = i;
                int stop = matchEnd;
                // The search resumes right after the matched text, as Aho-Corasick's non-overlapping
                // iteration does, whether single_word rejects the match or rstrip extends it.
                i = matchEnd;
                if (matched.singleWord()) {
                    boolean wordBefore = start > 0 && isWordCharacter(text.codePointBefore(start));
                    boolean wordAfter = stop < length && isWordCharacter(text.codePointAt(stop));
                    if (wordBefore || wordAfter) {
                        continue;
                    }
                }
                if (matched.lstrip()) {
                    int newStart = start;
                    while (newStart > 0 && Normalizer.isRustWhitespace(text.charAt(newStart - 1))) {
                        newStart--;
                    }
                    // Whitespace already swallowed by the previous match stays with it.
                    start = Math.max(newStart, segmentStart);
                }
                if (matched.rstrip()) {
                    while (stop < length && Normalizer.isRustWhitespace(text.charAt(stop))) {
                        stop++;
                    }
                }
                if (segmentStart < start) {
                    out.add(new Segment(text.substring(segmentStart, start), -1, atInputStart && segmentStart == 0));
                }
                out.add(new Segment(text.substring(start, stop), matched.id(), atInputStart && start == 0));
                segmentStart = stop;
            }
            if (segmentStart < length) {
                out.add(new Segment(text.substring(segmentStart), -1, atInputStart && segmentStart == 0));
            }
        }

        /** Rust regex's Unicode {@code \w}: Alphabetic, marks, decimal digits, connector punctuation, joiners. */
        private static boolean isWordCharacter(int cp) {
            if (Character.isAlphabetic(cp)) {
                return true;
            }
            switch (Character.getType(cp)) {
                case Character.NON_SPACING_MARK: case Character.ENCLOSING_MARK: case Character.COMBINING_SPACING_MARK:
                case Character.DECIMAL_DIGIT_NUMBER: case Character.CONNECTOR_PUNCTUATION:
                    return true;
                default:
                    return cp == 0x200C || cp == 0x200D;
            }
        }
    }
}
