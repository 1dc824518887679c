package ai.kiln.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.testing.Fixtures;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelManifestTest {

    @TempDir
    Path dir;

    @Test
    void listsTheModelFilesOfADirectoryWithSizesAndSha256AndReadsBackWhatItWrites() throws Exception {
        Path fixture = Fixtures.named("llama3-gqa").dir();
        ModelManifest manifest = ModelManifest.of(fixture);

        assertEquals(List.of("chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
                "tokenizer.json", "tokenizer_config.json"), manifest.files().stream().map(ModelManifest.Entry::path)
                .toList(), "reference.json is no model file");
        ModelManifest.Entry config = manifest.files().get(1);
        assertEquals(Files.size(fixture.resolve("config.json")), config.size());
        assertEquals(java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                .digest(Files.readAllBytes(fixture.resolve("config.json")))), config.sha256());

        Files.copy(fixture.resolve("config.json"), dir.resolve("config.json"));
        Files.copy(fixture.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        Path written = ModelManifest.of(dir).write(dir);
        assertEquals(dir.resolve(ModelManifest.FILE_NAME), written);
        assertEquals(ModelManifest.of(dir), ModelManifest.parse(Files.readAllBytes(written)),
                "the manifest does not list itself");
    }

    @Test
    void refusesAManifestThatCouldWriteOutsideTheSnapshotOrIsNoModel() {
        String sha = "0".repeat(64);
        String escaping = """
                {"format": "kiln-manifest", "version": 1, "files": [
                  {"path": "config.json", "size": 1, "sha256": "%1$s"},
                  {"path": "../model.safetensors", "size": 1, "sha256": "%1$s"}]}""".formatted(sha);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelManifest.parse(escaping.getBytes(StandardCharsets.UTF_8)));
        assertTrue(e.getMessage().contains("'../model.safetensors' is not a file name"), e.getMessage());

        String noWeights = """
                {"format": "kiln-manifest", "version": 1, "files": [
                  {"path": "config.json", "size": 1, "sha256": "%s"}]}""".formatted(sha);
        e = assertThrows(IllegalArgumentException.class,
                () -> ModelManifest.parse(noWeights.getBytes(StandardCharsets.UTF_8)));
        assertTrue(e.getMessage().contains("no .safetensors weights"), e.getMessage());

        e = assertThrows(IllegalArgumentException.class,
                () -> ModelManifest.parse("{\"format\": \"other\"}".getBytes(StandardCharsets.UTF_8)));
        assertTrue(e.getMessage().contains("not a kiln-manifest version 1"), e.getMessage());
    }
}
