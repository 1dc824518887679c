package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** UTF-8 in pieces: characters come out once complete, and the pieces join to the lossy decode. */
class Utf8PiecesTest {

    @Test
    void aCharacterSplitOverPiecesWaitsForItsLastByte() {
        byte[] thumbs = "👍".getBytes(StandardCharsets.UTF_8); // four bytes
        Utf8Pieces pieces = new Utf8Pieces();
        assertEquals("a", pieces.append(new byte[] {'a', thumbs[0]}));
        assertEquals("", pieces.append(new byte[] {thumbs[1], thumbs[2]}));
        assertEquals("👍b", pieces.append(new byte[] {thumbs[3], 'b'}));
        assertEquals("", pieces.finish());
    }

    @Test
    void invalidBytesBecomeReplacementsAndAnUnfinishedCharacterEndsAsOne() {
        Utf8Pieces pieces = new Utf8Pieces();
        assertEquals("\uFFFDx", pieces.append(new byte[] {(byte) 0xFF, 'x'}));
        assertEquals("", pieces.append(new byte[] {(byte) 0xE4, (byte) 0xBD}));
        assertEquals("\uFFFD", pieces.finish(), "the cut-off start of a character");
        assertEquals("y", pieces.append(new byte[] {'y'}), "empty again after finish");
    }

    @Test
    void piecesJoinToTheLossyDecodeOfAllTheBytes() {
        Random random = new Random(5);
        for (int trial = 0; trial < 200; trial++) {
            // Text with 1- to 4-byte characters, then a few bytes flipped to make some of it invalid.
            byte[] all = "a é 你 👍🏽 z".repeat(1 + random.nextInt(4)).getBytes(StandardCharsets.UTF_8);
            for (int flips = random.nextInt(3); flips > 0; flips--) {
                all[random.nextInt(all.length)] = (byte) random.nextInt(256);
            }
            Utf8Pieces pieces = new Utf8Pieces();
            StringBuilder joined = new StringBuilder();
            for (int at = 0; at < all.length; ) {
                int n = Math.min(all.length - at, 1 + random.nextInt(5));
                byte[] piece = new byte[n];
                System.arraycopy(all, at, piece, 0, n);
                joined.append(pieces.append(piece));
                at += n;
            }
            joined.append(pieces.finish());
            assertEquals(Utf8.decodeLossy(all, all.length), joined.toString(), "trial " + trial);
        }
    }
}
