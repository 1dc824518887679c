package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Streaming emits text only once it is final, and the pieces add up to the one-shot decode. */
class IncrementalDecoderTest {
    private static List<String> pieces(Tokenizer tokenizer, int[] ids, boolean skipSpecialTokens) {
        IncrementalDecoder decoder = tokenizer.newIncrementalDecoder(skipSpecialTokens);
        List<String> out = new ArrayList<>();
        for (int id : ids) {
            out.add(decoder.push(id));
        }
        out.add(decoder.flush());
        return out;
    }

    @Test
    void byteLevelHoldsSplitCharacters() {
        Tokenizer llama3 = TestVocabularies.tokenizer("llama3");
        // "👍🏽" is split over several byte-level tokens.
        int[] ids = llama3.encode("ok 👍🏽!", false);
        List<String> pieces = pieces(llama3, ids, false);
        assertEquals("ok 👍🏽!", String.join("", pieces));
        for (String piece : pieces) {
            assertEquals(-1, Utf8.indexOfLoneSurrogate(piece), "a piece ends inside a character");
            assertEquals(false, piece.contains("\uFFFD"), "a piece shows a partial character as U+FFFD");
        }
    }

    @Test
    void byteLevelPiecesAreTheDecoderStagesPiecesOneForOne() {
        // The byte-level decoders stream from the tokenizer's byte table; the decoder's own stage,
        // fed token strings, is the reference: the same piece after every id.
        for (String name : new String[] {"llama3", "qwen3"}) {
            Tokenizer tokenizer = TestVocabularies.tokenizer(name);
            java.util.Random random = new java.util.Random(11);
            for (boolean skip : new boolean[] {true, false}) {
                for (int trial = 0; trial < 20; trial++) {
                    int[] ids = new int[40];
                    for (int i = 0; i < ids.length; i++) {
                        // Mostly ids near the top (added and special tokens), others anywhere, some unknown.
                        int bound = tokenizer.vocabSize();
                        ids[i] = random.nextInt(8) == 0 ? bound - 1 - random.nextInt(300)
                                : random.nextInt(16) == 0 ? bound + random.nextInt(10) : random.nextInt(bound);
                    }
                    assertEquals(stagePieces(tokenizer, ids, skip), pieces(tokenizer, ids, skip), name + " " + trial);
                }
            }
        }
    }

    /** What the decoder's streaming stage emits for each id, then at the end. */
    private static List<String> stagePieces(Tokenizer tokenizer, int[] ids, boolean skipSpecialTokens) {
        DecoderStage stage = tokenizer.decoder().newStage();
        DecoderStage.Collector collector = new DecoderStage.Collector();
        List<String> out = new ArrayList<>();
        for (int id : ids) {
            String token = tokenizer.decodableToken(id, skipSpecialTokens);
            if (token != null) {
                stage.begin(collector);
                stage.text(token, collector);
                stage.end(collector);
            }
            out.add(collector.take());
        }
        stage.finish(collector);
        out.add(collector.take());
        return out;
    }

    @Test
    void byteFallbackRunsWaitForTheirEnd() {
        Tokenizer llama2 = TestVocabularies.tokenizer("llama2");
        int e4 = llama2.tokenId("<0xE4>").getAsInt();
        int bd = llama2.tokenId("<0xBD>").getAsInt();
        int a0 = llama2.tokenId("<0xA0>").getAsInt();
        int hello = llama2.tokenId("▁Hello").getAsInt();
        // "你" as three byte tokens, then a word: nothing until the run is known to be complete.
        assertEquals(List.of("", "", "", "你 Hello", ""), pieces(llama2, new int[] {e4, bd, a0, hello}, false));
        // An incomplete run becomes one U+FFFD per byte, as in the one-shot decode.
        assertEquals("\uFFFD\uFFFD Hello", String.join("", pieces(llama2, new int[] {e4, bd, hello}, false)));
        assertEquals(llama2.decode(new int[] {e4, bd, hello}, false), String.join("", pieces(llama2, new int[] {e4, bd, hello}, false)));
    }

    @Test
    void leadingSpaceIsStrippedOnlyAtTheStart() {
        Tokenizer llama2 = TestVocabularies.tokenizer("llama2");
        int[] ids = llama2.encode("Hello world", false);
        List<String> pieces = pieces(llama2, ids, false);
        assertEquals("Hello", pieces.get(0));
        assertEquals(" world", pieces.get(1));
        int space = llama2.tokenId("▁").getAsInt();
        // A lone "▁" first decodes to "" (stripped); the next one keeps its space.
        assertEquals("  Hello", llama2.decode(new int[] {space, space, llama2.tokenId("▁Hello").getAsInt()}, false));
        assertEquals("  Hello", String.join("", pieces(llama2, new int[] {space, space, llama2.tokenId("▁Hello").getAsInt()}, false)));
    }

    @Test
    void skipsSpecialAndUnknownIdsAndResetsAfterFlush() {
        Tokenizer qwen3 = TestVocabularies.tokenizer("qwen3");
        int imStart = qwen3.tokenId("<|im_start|>").getAsInt();
        int[] ids = qwen3.encode("hi", false);
        int[] withSpecial = {imStart, ids[0], -5, 999_999_999};
        assertEquals("hi", String.join("", pieces(qwen3, withSpecial, true)));
        assertEquals("<|im_start|>hi", String.join("", pieces(qwen3, withSpecial, false)));
        IncrementalDecoder decoder = qwen3.newIncrementalDecoder(false);
        decoder.push(ids[0]);
        decoder.flush();
        assertEquals("hi", decoder.push(ids[0]) + decoder.flush());
    }
}
