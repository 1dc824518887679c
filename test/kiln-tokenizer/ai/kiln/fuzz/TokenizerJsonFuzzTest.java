package ai.kiln.fuzz;

import ai.kiln.testing.Fixtures;
import ai.kiln.tokenizer.Tokenizer;
import ai.kiln.tokenizer.TokenizerLoadException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.lifecycle.AddLifecycleHook;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * tokenizer.json of two fixture models (a byte-level BPE and a SentencePiece-style one, about 20 KB
 * each, so that a try stays in milliseconds) after tree and byte edits. Each must load or be
 * refused with a {@link TokenizerLoadException}; one that loads must encode and decode a short
 * text without failing.
 */
@AddLifecycleHook(FuzzBudget.class)
class TokenizerJsonFuzzTest {

    static final String TARGET = "tokenizer";
    private static final List<Class<? extends Throwable>> DECLARED = List.of(TokenizerLoadException.class);
    private static final String TEXT = "Hello, world! 123 h\u00e9llo \u4e2d\u6587 \ud83d\ude00\n\t  end";

    private static final List<JsonNode> SEEDS = List.of(fixture("llama3-gqa"), fixture("llama2-mha"));
    private static final Path SCRATCH = Fuzzing.scratchDirectory(TARGET);

    private static JsonNode fixture(String model) {
        return Mutations.parse(Fuzzing.read(Fixtures.ROOT.resolve(model).resolve("tokenizer.json")));
    }

    @Property
    void mutatedTokenizerLoadsOrIsRefused(@ForAll long seed, @ForAll @IntRange(min = 1, max = 6) int edits) {
        Random random = new Random(seed);
        JsonNode tokenizer = SEEDS.get(random.nextInt(SEEDS.size()));
        byte[] bytes = random.nextInt(5) == 0
                ? Mutations.mutateBytes(Mutations.write(tokenizer), edits, 1 << 16, random)
                : Mutations.mutateJson(tokenizer, edits, random);
        check(bytes);
    }

    @TestFactory
    Stream<DynamicTest> pastFindingsStillLoadOrAreRefused() {
        return Fuzzing.corpus(TARGET).map(file -> DynamicTest.dynamicTest(file.getFileName().toString(),
                () -> check(Fuzzing.read(file))));
    }

    private static void check(byte[] tokenizerJson) {
        try {
            Files.write(SCRATCH.resolve("tokenizer.json"), tokenizerJson);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Fuzzing.check(TARGET, tokenizerJson, () -> {
            Tokenizer tokenizer = Tokenizer.load(SCRATCH);
            int[] ids = tokenizer.encode(TEXT, true);
            return tokenizer.decode(ids, false);
        }, Fuzzing.declared(DECLARED));
    }
}
