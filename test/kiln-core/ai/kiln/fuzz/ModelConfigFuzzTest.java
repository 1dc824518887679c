package ai.kiln.fuzz;

import ai.kiln.model.ModelConfig;
import ai.kiln.model.ModelLoadException;
import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
 * config.json and generation_config.json of the fixture models with values replaced by other
 * JSON types and extreme numbers, keys deleted, added and given twice, and bytes edited. Every
 * pair must load into a config that passes its own checks, or be refused with a
 * {@link ModelLoadException}.
 */
@AddLifecycleHook(FuzzBudget.class)
class ModelConfigFuzzTest {

    static final String TARGET = "config";
    private static final List<Class<? extends Throwable>> DECLARED = List.of(ModelLoadException.class);

    private static final List<JsonNode> CONFIGS = fixtureFiles("config.json");
    private static final List<JsonNode> GENERATION_CONFIGS = fixtureFiles("generation_config.json");
    private static final Path SCRATCH = Fuzzing.scratchDirectory(TARGET);

    private static List<JsonNode> fixtureFiles(String name) {
        List<JsonNode> documents = new ArrayList<>();
        try (Stream<Path> dirs = Files.list(Fixtures.ROOT)) {
            for (Path dir : dirs.sorted().toList()) {
                if (Files.isRegularFile(dir.resolve(name))) {
                    documents.add(Mutations.parse(Files.readAllBytes(dir.resolve(name))));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return documents;
    }

    @Property
    void mutatedConfigLoadsOrIsRefused(@ForAll long seed, @ForAll @IntRange(min = 1, max = 6) int edits) {
        Random random = new Random(seed);
        JsonNode config = CONFIGS.get(random.nextInt(CONFIGS.size()));
        byte[] bytes = random.nextInt(5) == 0
                ? Mutations.mutateBytes(Mutations.write(config), edits, 1 << 16, random)
                : Mutations.mutateJson(config, edits, random);
        byte[] generation = null;
        if (random.nextInt(4) == 0) {
            generation = Mutations.mutateJson(GENERATION_CONFIGS.get(random.nextInt(GENERATION_CONFIGS.size())),
                    1 + random.nextInt(3), random);
        }
        check(bytes, generation);
    }

    @TestFactory
    Stream<DynamicTest> pastFindingsStillLoadOrAreRefused() {
        return Fuzzing.corpus(TARGET).map(file -> DynamicTest.dynamicTest(file.getFileName().toString(),
                () -> check(Fuzzing.read(file), null)));
    }

    /** Loads the pair; a config that loads must also give sizes that its users compute without wrapping. */
    private static void check(byte[] config, byte[] generation) {
        try {
            Files.write(SCRATCH.resolve("config.json"), config);
            Path generationFile = SCRATCH.resolve("generation_config.json");
            if (generation == null) {
                Files.deleteIfExists(generationFile);
            } else {
                Files.write(generationFile, generation);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        byte[] input = generation == null ? config
                : Mutations.splice(config, config.length, config.length, Fuzzing.utf8("\n--- generation_config.json\n"
                        + new String(generation, java.nio.charset.StandardCharsets.UTF_8)));
        Fuzzing.check(TARGET, input, () -> {
            ModelConfig loaded = ModelConfig.load(SCRATCH);
            if (loaded.qSize() <= 0 || loaded.kvSize() <= 0 || loaded.qSize() % loaded.kvSize() != 0) {
                throw new AssertionError("loaded config has q/kv sizes " + loaded.qSize() + ", " + loaded.kvSize());
            }
            return loaded;
        }, Fuzzing.declared(DECLARED));
    }
}
