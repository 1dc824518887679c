package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.kiln.testing.Fixtures;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * {@link Tokenizer#tokenBytes}: one token's own bytes, raw where decoding it alone would show
 * U+FFFD for a byte that is only part of a character.
 */
class TokenBytesTest {

    private static Tokenizer fixture(String name) {
        try {
            return Tokenizer.load(Fixtures.named(name).dir());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void byteLevelTokenIsTheByteItsCharacterStandsFor() {
        Tokenizer llama3 = fixture("llama3-gqa");
        // "ý" (U+00FD) is the ByteLevel alphabet's character for the byte 0xFD, not a character of its own.
        int fd = llama3.tokenId("\u00fd").getAsInt();
        assertEquals("\uFFFD", llama3.decode(new int[] {fd}, false));
        assertArrayEquals(new byte[] {(byte) 0xFD}, llama3.tokenBytes(fd));
        // "Ġ" stands for the space.
        assertArrayEquals(utf8(" the"), llama3.tokenBytes(llama3.tokenId("Ġthe").getAsInt()));
        assertArrayEquals(utf8("<|begin_of_text|>"), llama3.tokenBytes(llama3.tokenId("<|begin_of_text|>").getAsInt()));
    }

    @Test
    void byteLevelBytesOfATextsTokensAddUpToTheText() {
        Tokenizer llama3 = fixture("llama3-gqa");
        String text = "naïve café, 你好 👍🏽!";
        ByteArrayOutputStream joined = new ByteArrayOutputStream();
        for (int id : llama3.encode(text, false)) {
            joined.writeBytes(llama3.tokenBytes(id));
        }
        assertArrayEquals(utf8(text), joined.toByteArray());
    }

    @Test
    void everyTokenDecodesAloneToItsBytesShownLossily() {
        for (String name : new String[] {"llama3-gqa", "llama2-mha", "mistral-gqa"}) {
            Tokenizer tokenizer = fixture(name);
            for (int id = 0; id < tokenizer.vocabSize(); id++) {
                byte[] bytes = tokenizer.tokenBytes(id);
                assertEquals(tokenizer.decode(new int[] {id}, false), Utf8.decodeLossy(bytes, bytes.length),
                        name + " token " + id);
            }
        }
    }

    @Test
    void byteFallbackTokenIsItsByte() {
        for (String name : new String[] {"llama2-mha", "mistral-gqa"}) {
            Tokenizer tokenizer = fixture(name);
            int fd = tokenizer.tokenId("<0xFD>").getAsInt();
            assertEquals("\uFFFD", tokenizer.decode(new int[] {fd}, false));
            assertArrayEquals(new byte[] {(byte) 0xFD}, tokenizer.tokenBytes(fd), name);
            assertArrayEquals(new byte[] {'A'}, tokenizer.tokenBytes(tokenizer.tokenId("<0x41>").getAsInt()), name);
            assertArrayEquals(new byte[] {'\n'}, tokenizer.tokenBytes(tokenizer.tokenId("<0x0A>").getAsInt()), name);
        }
    }

    @Test
    void sentencePieceTokenIsTheUtf8OfItsTextAlone() {
        Tokenizer llama2 = fixture("llama2-mha");
        for (int id : llama2.encode("Hello world, naïve", false)) {
            assertArrayEquals(utf8(llama2.decode(new int[] {id}, false)), llama2.tokenBytes(id), "token " + id);
        }
        assertArrayEquals(utf8("<s>"), llama2.tokenBytes(llama2.tokenId("<s>").getAsInt()));
    }

    @Test
    void idOutsideTheVocabularyHasNoBytes() {
        Tokenizer llama3 = fixture("llama3-gqa");
        assertArrayEquals(new byte[0], llama3.tokenBytes(-1));
        assertArrayEquals(new byte[0], llama3.tokenBytes(llama3.vocabSize() + 100));
        Tokenizer llama2 = fixture("llama2-mha");
        assertArrayEquals(new byte[0], llama2.tokenBytes(llama2.vocabSize() + 100));
    }

    @Test
    void returnedBytesAreTheCallersOwn() {
        Tokenizer llama3 = fixture("llama3-gqa");
        int the = llama3.tokenId("Ġthe").getAsInt();
        llama3.tokenBytes(the)[0] = 'X';
        assertArrayEquals(utf8(" the"), llama3.tokenBytes(the));
    }
}
