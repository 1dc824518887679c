package ai.kiln.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.StructuredOutput;
import ai.kiln.grammar.CompiledGrammar;
import ai.kiln.grammar.GrammarException;
import ai.kiln.grammar.TokenVocabulary;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The engine's cache of compiled grammars: one compilation per constraint value, the vocabulary
 * built once, and the least recently used dropped past the grammar count or the mask bytes.
 */
class GrammarCacheTest {

    static final AtomicInteger vocabularies = new AtomicInteger();

    static TokenVocabulary vocabulary() {
        vocabularies.incrementAndGet();
        byte[][] bytes = new byte[64][];
        for (int id = 0; id < 62; id++) {
            bytes[id] = new byte[] {(byte) ('0' + id % 75)};
        }
        bytes[62] = "ab".getBytes(StandardCharsets.UTF_8);
        return new TokenVocabulary(bytes, new int[] {63});
    }

    @Test
    void aConstraintCompilesOnceAndTheLeastRecentlyUsedGoFirst() {
        vocabularies.set(0);
        GrammarCache cache = new GrammarCache(GrammarCacheTest::vocabulary, 2, Long.MAX_VALUE);
        StructuredOutput a = StructuredOutput.regex("a+");
        StructuredOutput b = StructuredOutput.regex("b+");
        StructuredOutput c = StructuredOutput.regex("c+");
        CompiledGrammar first = cache.get(a);
        assertSame(first, cache.get(StructuredOutput.regex("a+")), "equal constraints share one compilation");
        cache.get(b);
        cache.get(a); // a is now more recent than b
        cache.get(c);
        assertEquals(2, cache.size());
        assertTrue(cache.holds(a));
        assertFalse(cache.holds(b), "the least recently used is dropped");
        assertTrue(cache.holds(c));
        assertEquals(1, vocabularies.get(), "the vocabulary is built once");
    }

    @Test
    void maskBytesBoundTheCacheButTheNewestStays() {
        GrammarCache cache = new GrammarCache(GrammarCacheTest::vocabulary, 64, 1);
        cache.get(StructuredOutput.jsonObject());
        StructuredOutput choice = StructuredOutput.choice(java.util.List.of("12", "ab"));
        assertTrue(cache.get(choice).maskBytes() > 1);
        assertEquals(1, cache.size());
        assertTrue(cache.holds(choice));
    }

    @Test
    void aBadConstraintIsRefusedAndNotKept() {
        GrammarCache cache = new GrammarCache(GrammarCacheTest::vocabulary);
        assertThrows(GrammarException.class, () -> cache.get(StructuredOutput.regex("(")));
        assertEquals(0, cache.size());
    }
}
