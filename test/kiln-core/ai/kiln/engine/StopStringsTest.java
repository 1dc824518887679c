package ai.kiln.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Stop-string matching and the hold-back of text that may still become a stop string. */
class StopStringsTest {

    private final StopStrings stops = new StopStrings(List.of("END", "\n\n"));

    @Test
    void findsTheEarliestMatchIncludingOneSplitOverPieces() {
        StringBuilder text = new StringBuilder("hello E");
        assertNull(stops.find(text, 0));
        int before = text.length();
        text.append("ND and more\n\n");
        assertEquals(new StopStrings.Match(6, "END"), stops.find(text, before));
        assertEquals(new StopStrings.Match(2, "\n\n"), stops.find("ab\n\nEND", 0));
    }

    @Test
    void searchesOnlyWhereANewMatchCanEnd() {
        // A match wholly inside text searched before is not reported again.
        assertNull(stops.find("END then", 7));
        assertEquals(new StopStrings.Match(3, "END"), stops.find("ab END", 5));
    }

    @Test
    void aMatchStartingAtTheEdgeOfTheSearchedTailIsFoundAtItsPlaceInTheWholeText() {
        // Only the last (longest stop - 1) characters before the new text can start a new match.
        String before = "x".repeat(1000) + "EN";
        StringBuilder text = new StringBuilder(before).append("D, then END again");
        assertEquals(new StopStrings.Match(1000, "END"), stops.find(text, before.length()));
        assertEquals(new StopStrings.Match(1003, "\n\n"), stops.find(before + "D\n\n", before.length() + 1));
    }

    @Test
    void holdsBackTheLongestSuffixThatStartsAStopString() {
        assertEquals(0, stops.holdBack("hello"));
        assertEquals(1, stops.holdBack("hello E"));
        assertEquals(2, stops.holdBack("hello EN"));
        assertEquals(1, stops.holdBack("line\n"));
        assertEquals(0, stops.holdBack(""));
        assertEquals(0, new StopStrings(List.of()).holdBack("E"));
        assertEquals(2, new StopStrings(List.of("abab")).holdBack("xxab"));
        assertEquals(3, new StopStrings(List.of("abab")).holdBack("xaba"));
    }
}
