package ai.kiln.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConcurrencyAndComponentsTest {
    @TempDir
    Path dir;

    /** One tokenizer shared by many threads (its word cache included) gives every thread the reference ids. */
    @Test
    void sharedTokenizerIsThreadSafe() throws Exception {
        Tokenizer tokenizer = TestVocabularies.variant("llama3", TestVocabularies.fixture("variants.json")
                .get("llama3-without-ignore-merges").get("patch"));
        List<JsonNode> cases = new ArrayList<>();
        TestVocabularies.fixture("variants.json").get("llama3-without-ignore-merges").get("cases").forEach(cases::add);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int thread = 0; thread < 4; thread++) {
                int offset = thread * 37;
                futures.add(pool.submit(() -> {
                    for (int round = 0; round < 3; round++) {
                        for (int i = 0; i < cases.size(); i++) {
                            JsonNode c = cases.get((i + offset) % cases.size());
                            assertArrayEquals(TestVocabularies.ints(c.get("ids")),
                                    tokenizer.encode(c.get("text").textValue(), c.get("add_special").booleanValue()));
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> future : futures) {
                future.get();
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void robertaProcessingWrapsTheSequence() throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<s>\": 0, \"</s>\": 2, \"a\": 3},"
                + " \"merges\": []}, \"post_processor\": {\"type\": \"RobertaProcessing\", \"sep\": [\"</s>\", 2], \"cls\": [\"<s>\", 0],"
                + " \"trim_offsets\": true, \"add_prefix_space\": false}}");
        Tokenizer tokenizer = Tokenizer.load(dir);
        assertArrayEquals(new int[] {0, 3, 3, 2}, tokenizer.encode("aa", true));
        assertArrayEquals(new int[] {3, 3}, tokenizer.encode("aa", false));
    }

    @Test
    void subwordPrefixAndSuffixAreUsedForLookupsAndMerges() throws IOException {
        // WordPiece-style BPE: continuation pieces carry "##"; "a ##b" merges into "ab".
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"##b\": 1, \"ab\": 2,"
                + " \"##c</w>\": 3}, \"merges\": [\"a ##b\"], \"continuing_subword_prefix\": \"##\", \"end_of_word_suffix\": \"</w>\"},"
                + " \"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"}}");
        Tokenizer tokenizer = Tokenizer.load(dir);
        assertArrayEquals(new int[] {2, 3}, tokenizer.encode("abc", false));
        assertEquals(4, tokenizer.vocabSize());
    }
}
