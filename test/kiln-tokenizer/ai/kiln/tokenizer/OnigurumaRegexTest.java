package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class OnigurumaRegexTest {
    @Test
    void translatesConstructsThatDifferInJava() {
        assertEquals("[0-9a-fA-F]+", OnigurumaRegex.translate("\\h+"));
        assertEquals("\\x0B", OnigurumaRegex.translate("\\v"));
        assertEquals("(?s:.+)", OnigurumaRegex.translate("(?m:.+)"));
        assertEquals("\\p{L}\\P{N}\\P{Lu}\\p{IsHan}", OnigurumaRegex.translate("\\p{Letter}\\p{^N}\\P{Uppercase_Letter}\\p{Han}"));
        assertEquals("(?i:'s)|(?>a+)|b++|(?<name>c)", OnigurumaRegex.translate("(?i:'s)|(?>a+)|b++|(?<name>c)"));
    }

    @Test
    void unicodeAwareClassesAndCase() {
        assertTrue(OnigurumaRegex.compile("^\\s$").matcher("\u3000").matches());
        assertTrue(OnigurumaRegex.compile("(?i:'s)").matcher("'\u017F").matches());
        assertTrue(OnigurumaRegex.compile("\\w+").matcher("é中").matches());
        // Ruby's ^ and $ are line anchors.
        assertTrue(OnigurumaRegex.compile("^b$").matcher("a\nb\nc").find());
    }

    @Test
    void refusesWhatJavaCannotExpress() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> OnigurumaRegex.compile("a\\Kb")).getMessage().contains("\\K"));
        assertThrows(IllegalArgumentException.class, () -> OnigurumaRegex.compile("(?~abc)"));
        assertThrows(IllegalArgumentException.class, () -> OnigurumaRegex.compile("\\p{NoSuchProperty}"));
    }
}
