package ai.kiln.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Fixture models copied where a test may damage them, and loaded the way the engine loads weights. */
final class DamagedModels {

    private DamagedModels() {
    }

    /** A copy of fixture {@code name}'s directory at {@code target}. */
    static Path copyOfFixture(String name, Path target) throws IOException {
        Files.createDirectories(target);
        try (Stream<Path> files = Files.list(Fixtures.ROOT.resolve(name))) {
            for (Path file : files.toList()) {
                Files.copy(file, target.resolve(file.getFileName()));
            }
        }
        return target;
    }

    /** Loads a model directory's config and weights on the CPU backend (throwing what the load throws). */
    static void load(Path modelDir) {
        ModelConfig config = ModelConfig.load(modelDir);
        try (CpuBackend backend = new CpuBackend(1, 1L << 28);
                WeightFiles files = WeightFiles.open(modelDir);
                ModelWeights weights = ModelWeights.load(config, files, backend)) {
            assertTrue(weights.bytes() > 0);
        }
    }
}
