package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.hub.ModelManifest;
import ai.kiln.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ManifestCommandTest {

    @TempDir
    Path dir;

    @Test
    void writesTheManifestOfAModelDirectoryAndRefusesADirectoryWithoutWeights() throws Exception {
        Path model = Files.createDirectories(dir.resolve("llama3-gqa"));
        try (Stream<Path> files = Files.list(Fixtures.named("llama3-gqa").dir())) {
            for (Path file : files.toList()) {
                Files.copy(file, model.resolve(file.getFileName()));
            }
        }
        GenerateCommandTest.Run run = GenerateCommandTest.kiln("manifest", model.toString());
        assertEquals(0, run.exitCode(), run.err());
        Path written = model.resolve(ModelManifest.FILE_NAME);
        assertTrue(run.out().contains("wrote " + written + ": 6 files"), run.out());
        ModelManifest manifest = ModelManifest.parse(Files.readAllBytes(written));
        assertEquals(ModelManifest.of(model), manifest);
        assertEquals(Files.size(model.resolve("model.safetensors")), manifest.files().stream()
                .filter(f -> f.path().equals("model.safetensors")).findFirst().orElseThrow().size());

        Path configOnly = Files.createDirectories(dir.resolve("config-only"));
        Files.copy(model.resolve("config.json"), configOnly.resolve("config.json"));
        GenerateCommandTest.Run refused = GenerateCommandTest.kiln("manifest", configOnly.toString());
        assertEquals(1, refused.exitCode());
        assertTrue(refused.err().contains("not a model directory") && refused.err().contains("no .safetensors"),
                refused.err());
        assertFalse(Files.exists(configOnly.resolve(ModelManifest.FILE_NAME)));
    }
}
