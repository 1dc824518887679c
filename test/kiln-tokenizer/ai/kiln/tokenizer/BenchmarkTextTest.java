package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The benchmark texts encode to the reference ids, so that TokenizerBenchmark measures correct work. */
class BenchmarkTextTest {
    @ParameterizedTest
    @CsvSource({"llama3,english", "llama3,cjk", "qwen3,english", "qwen3,cjk"})
    void benchmarkTextsMatchTheReference(String vocabulary, String text) throws IOException {
        JsonNode expected = TestVocabularies.fixture("bench.json").get(vocabulary + "/" + text + ".txt");
        String input;
        try (InputStream in = getClass().getResourceAsStream("/tokenizer/bench/" + text + ".txt")) {
            input = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        Tokenizer tokenizer = TestVocabularies.tokenizer(vocabulary);
        int[] ids = tokenizer.encode(input, false);
        assertArrayEquals(TestVocabularies.ints(expected.get("ids")), ids);
        assertEquals(input, tokenizer.decode(ids, false));
        assertEquals(input, TestVocabularies.streamDecode(tokenizer, ids, false));
    }
}
