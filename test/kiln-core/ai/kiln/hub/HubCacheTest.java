package ai.kiln.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineException;
import ai.kiln.api.EngineOptions;
import ai.kiln.testing.Fixtures;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A cache filled as huggingface_hub fills it (blobs named by ETag, snapshot symlinks into them, a
 * ref naming the commit) is found with no server at all: the endpoint here is a closed port, so
 * any request would fail the test.
 */
class HubCacheTest {

    static final String REPO = "kiln-test/llama3-gqa";
    static final String COMMIT = "fedcba9876543210fedcba9876543210fedcba98";
    static final URI NO_SERVER = URI.create("http://127.0.0.1:9");

    @TempDir
    Path cacheDir;

    /** Lays the fixture out as huggingface_hub would have downloaded it, writing refs/main where {@code withRef}. */
    Path fillCache(boolean withRef) throws IOException {
        Path repoDir = cacheDir.resolve("models--kiln-test--llama3-gqa");
        Path blobs = Files.createDirectories(repoDir.resolve("blobs"));
        Path snapshot = Files.createDirectories(repoDir.resolve("snapshots").resolve(COMMIT));
        try (Stream<Path> files = Files.list(Fixtures.named("llama3-gqa").dir())) {
            for (Path file : files.toList()) {
                String etag = HubFixtureServer.hex("SHA-256", Files.readAllBytes(file));
                Files.copy(file, blobs.resolve(etag));
                Files.createSymbolicLink(snapshot.resolve(file.getFileName()), Path.of("../../blobs", etag));
            }
        }
        if (withRef) {
            Files.createDirectories(repoDir.resolve("refs"));
            Files.writeString(repoDir.resolve("refs/main"), COMMIT + "\n");
        }
        return snapshot;
    }

    ModelLocator locator(boolean offline) {
        return new ModelLocator(new HubSettings(NO_SERVER, cacheDir, null, offline), null);
    }

    @Test
    void aModelPythonToolsDownloadedIsFoundThroughItsRefWithNoServer() throws IOException {
        Path snapshot = fillCache(true);
        LocatedModel model = locator(false).locate(REPO, "main");
        assertEquals(snapshot, model.directory());
        assertEquals(REPO, model.name());
        assertEquals(snapshot, locator(true).locate(REPO, null).directory());
    }

    @Test
    void aCommitRevisionIsFoundWithoutARef() throws IOException {
        Path snapshot = fillCache(false);
        assertEquals(snapshot, locator(false).locate(REPO, COMMIT).directory());
    }

    @Test
    void aSnapshotWithTheConfigAloneIsNotTrustedAndOfflineSaysWhatItLacks() throws IOException {
        Path snapshot = fillCache(true);
        Files.delete(snapshot.resolve("model.safetensors"));
        HubException e = assertThrows(HubException.class, () -> locator(true).locate(REPO, "main"));
        assertTrue(e.getMessage().contains("lacks *.safetensors weights"), e.getMessage());
        // Not offline: it is downloaded (here the closed port answers nothing, which says so).
        HubException online = assertThrows(HubException.class, () -> locator(false).locate(REPO, "main"));
        assertTrue(online.getMessage().contains("no answer from " + NO_SERVER), online.getMessage());
    }

    @Test
    void aShardTheIndexNamesBeingAbsentMakesTheSnapshotIncomplete() throws IOException {
        Path snapshot = fillCache(true);
        Files.writeString(snapshot.resolve("model.safetensors.index.json"),
                "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model.safetensors\"}}");
        assertEquals(List.of("model-00001-of-00002.safetensors"), HubCache.missingForModel(snapshot));
    }

    @Test
    void anExistingPathWinsAndNeitherPathNorIdIsRefused() throws IOException {
        Path dir = Files.createDirectories(cacheDir.resolve("local-model"));
        LocatedModel local = locator(true).locate(dir.toString(), "main");
        assertEquals(dir, local.directory());
        assertEquals("local-model", local.name());
        assertFalse(ModelLocator.isHubId(dir.toString()));
        assertTrue(ModelLocator.isHubId("meta-llama/Llama-3.2-1B-Instruct"));
        for (String notAnId : new String[] {"just-a-name", "a/b/c", "../x", "org/..", "org--x/y", "-org/name"}) {
            assertFalse(HubRepo.isRepoId(notAnId), notAnId);
        }
        HubException e = assertThrows(HubException.class, () -> locator(true).locate("no/such/dir", "main"));
        assertTrue(e.getMessage().contains("neither an existing directory, a Hugging Face Hub id"), e.getMessage());
    }

    @Test
    void engineCreateTakesADirectoryByNameAndRefusesWhatIsNeitherPathNorId() {
        EngineOptions options = EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(512).build();
        try (Engine engine = Engine.create(Fixtures.named("llama3-gqa").dir().toString(), "main", options)) {
            assertEquals("llama3-gqa", engine.modelName());
        }
        EngineException e = assertThrows(EngineException.class, () -> Engine.create("no/such/dir", options));
        assertTrue(e.getMessage().contains("neither an existing directory, a Hugging Face Hub id"), e.getMessage());
    }
}
