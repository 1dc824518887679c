package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The hand-written splitters match exactly what java.util.regex finds with the translated patterns. */
class GptPatternSplitterTest {
    private static final String[] POOL = {
        "a", "b", "Z", "é", "ß", "ſ", "K", "s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "LL", "'", "’",
        "0", "7", "٣", "½", "Ⅷ", "１", " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u3000", "\u2028", "\u0085",
        "\u000b", "\u000c", "\u200b", "\u200d", ".", ",", "!", "?", "(", ")", "\"", "<", "|", ">", "_", "-", "#",
        "中", "文", "日", "本", "あ", "한", "ا", "न", "्", "\u0301", "😀", "👍🏽", "🇺🇸", "\uD835\uDC00", "\ue000", "\u0000",
    };

    static List<String> regexMatches(Pattern pattern, String text) {
        List<String> out = new ArrayList<>();
        Matcher matcher = pattern.matcher(text);
        while (matcher.find()) {
            out.add(matcher.group());
        }
        return out;
    }

    static List<String> splitterMatches(GptPatternSplitter splitter, String text) {
        List<String> out = new ArrayList<>();
        splitter.forEachMatch(text, 0, text.length(), (t, start, end) -> out.add(t.substring(start, end)));
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {GptPatternSplitter.LLAMA3_PATTERN, GptPatternSplitter.QWEN2_PATTERN, GptPatternSplitter.GPT2_PATTERN})
    void agreesWithTheRegexOnRandomText(String source) {
        GptPatternSplitter splitter = GptPatternSplitter.forPattern(source);
        Pattern pattern = OnigurumaRegex.compile(source);
        Random random = new Random(source.hashCode());
        for (int round = 0; round < 20_000; round++) {
            StringBuilder text = new StringBuilder();
            int length = 1 + random.nextInt(round % 10 == 0 ? 60 : 12);
            for (int i = 0; i < length; i++) {
                text.append(POOL[random.nextInt(POOL.length)]);
            }
            String input = text.toString();
            assertEquals(regexMatches(pattern, input), splitterMatches(splitter, input), () -> TestVocabularies.visible(input));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"Hello world", "I'm fine, you'RE 'ſ 12345 x  \n\n  y", "   ", "\t\tword", "a\u00a0b", ""})
    void handPickedCases(String text) {
        for (String source : List.of(GptPatternSplitter.LLAMA3_PATTERN, GptPatternSplitter.QWEN2_PATTERN, GptPatternSplitter.GPT2_PATTERN)) {
            assertEquals(regexMatches(OnigurumaRegex.compile(source), text), splitterMatches(GptPatternSplitter.forPattern(source), text));
        }
    }

    @org.junit.jupiter.api.Test
    void onlyExactPatternsUseTheFastPath() {
        assertSame(GptPatternSplitter.LLAMA3, GptPatternSplitter.forPattern(GptPatternSplitter.LLAMA3_PATTERN));
        assertEquals(null, GptPatternSplitter.forPattern(GptPatternSplitter.LLAMA3_PATTERN + "|x"));
    }
}
