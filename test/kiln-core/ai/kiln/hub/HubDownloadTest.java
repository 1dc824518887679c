package ai.kiln.hub;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import ai.kiln.engine.LocalEngine;
import ai.kiln.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Downloads from a local stand-in for the Hub ({@link HubFixtureServer}) into a Hugging Face cache
 * in a temporary directory: the layout huggingface_hub writes, the model it gives, and each way a
 * download fails, after which nothing a later run would trust is left (no snapshot entry, no ref).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HubDownloadTest {

    static final String REPO = "kiln-test/llama3-gqa";
    static final Fixtures.Model FIXTURE = Fixtures.named("llama3-gqa");

    @TempDir
    Path cacheDir;

    HubFixtureServer hub;

    @BeforeEach
    void startHub() throws IOException {
        hub = new HubFixtureServer(FIXTURE.dir(), REPO);
    }

    @AfterEach
    void stopHub() {
        hub.close();
    }

    LocatedModel locate(String token) {
        return new ModelLocator(new HubSettings(hub.endpoint(), cacheDir, token, false), null).locate(REPO, "main");
    }

    HubException failure() {
        return assertThrows(HubException.class, () -> locate(null));
    }

    Path repoDir() {
        return cacheDir.resolve("models--kiln-test--llama3-gqa");
    }

    /** Neither a ref nor a snapshot entry: a later run would download again, not trust what is there. */
    void assertNothingTrusted() throws IOException {
        assertFalse(Files.exists(repoDir().resolve("refs/main")), "refs/main was written");
        Path snapshots = repoDir().resolve("snapshots");
        if (Files.exists(snapshots)) {
            try (Stream<Path> entries = Files.walk(snapshots)) {
                assertEquals(List.of(), entries.filter(p -> !Files.isDirectory(p)).toList(), "snapshot entries");
            }
        }
    }

    static SamplingParams greedy(int maxTokens) {
        return SamplingParams.builder().temperature(0).maxTokens(maxTokens).ignoreEos(true).build();
    }

    @Test
    void downloadsIntoTheHuggingFaceLayoutAndGivesTheFixturesGreedyTokens() throws Exception {
        LocatedModel model = locate(null);

        Path snapshot = repoDir().resolve("snapshots").resolve(HubFixtureServer.COMMIT);
        assertEquals(snapshot, model.directory());
        assertEquals(REPO, model.name());
        assertEquals(HubFixtureServer.COMMIT, Files.readString(repoDir().resolve("refs/main")));
        Path weights = snapshot.resolve("model.safetensors");
        assertTrue(Files.isSymbolicLink(weights));
        assertEquals(Path.of("../../blobs/" + hub.sha256("model.safetensors")), Files.readSymbolicLink(weights));
        assertArrayEquals(Files.readAllBytes(FIXTURE.dir().resolve("model.safetensors")), Files.readAllBytes(weights));
        byte[] config = Files.readAllBytes(FIXTURE.dir().resolve("config.json"));
        assertEquals(Path.of("../../blobs/" + HubFixtureServer.gitBlobId(config)),
                Files.readSymbolicLink(snapshot.resolve("config.json")));
        for (String file : List.of("tokenizer.json", "tokenizer_config.json", "generation_config.json",
                "chat_template.jinja")) {
            assertTrue(Files.isRegularFile(snapshot.resolve(file)), file);
        }
        assertFalse(Files.exists(snapshot.resolve("reference.json")), "a file no model needs was downloaded");
        try (Stream<Path> blobs = Files.list(repoDir().resolve("blobs"))) {
            assertEquals(List.of(), blobs.filter(b -> b.toString().endsWith(".incomplete")).toList());
        }

        EngineOptions options = EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(512).build();
        try (Engine engine = LocalEngine.create(model, options)) {
            assertEquals(REPO, engine.modelName(), "served under the Hub id, not the snapshot's commit");
            for (Fixtures.Record record : FIXTURE.records()) {
                int[] tokens = engine.generate(GenerateRequest.ofTokens(record.promptTokenIds(),
                        greedy(record.greedyTokenIds().length))).tokenIds();
                assertArrayEquals(record.greedyTokenIds(), tokens, "HF greedy tokens of: " + record.prompt());
            }
        }

        // Found in the cache from now on, with the Hub gone.
        hub.close();
        assertEquals(snapshot, locate(null).directory());
    }

    @Test
    void aFlippedByteFailsTheChecksumAndLeavesNothingTrusted() throws IOException {
        hub.flippedByteFile = "model.safetensors";
        HubException e = failure();
        assertTrue(e.getMessage().contains("model.safetensors failed its checksum"), e.getMessage());
        assertTrue(e.getMessage().contains(hub.sha256("model.safetensors")), e.getMessage());
        assertNothingTrusted();
        String etag = hub.sha256("model.safetensors");
        assertFalse(Files.exists(repoDir().resolve("blobs/" + etag)));
        assertFalse(Files.exists(repoDir().resolve("blobs/" + etag + ".incomplete")), "the bad bytes were kept");

        hub.flippedByteFile = null;
        assertEquals(repoDir().resolve("snapshots/" + HubFixtureServer.COMMIT), locate(null).directory());
    }

    @Test
    void aConnectionClosedMidFileIsResumedByTheNextRunWithARangeRequest() throws IOException {
        hub.cutFile = "model.safetensors";
        hub.cutAfterBytes = 200_000;
        HubException e = failure();
        assertTrue(e.getMessage().contains("model.safetensors"), e.getMessage());
        assertTrue(e.getMessage().contains("run again to resume"), e.getMessage());
        assertNothingTrusted();
        String etag = hub.sha256("model.safetensors");
        Path part = repoDir().resolve("blobs/" + etag + ".incomplete");
        long kept = Files.size(part);
        assertTrue(kept > 0 && kept <= 200_000, "bytes kept: " + kept);

        LocatedModel model = locate(null);
        assertTrue(hub.requests().stream().anyMatch(r -> ("bytes=" + kept + "-").equals(r.range())
                && r.path().equals("/cdn/" + etag)), "no Range request from byte " + kept + ": " + hub.requests());
        assertArrayEquals(Files.readAllBytes(FIXTURE.dir().resolve("model.safetensors")),
                Files.readAllBytes(model.directory().resolve("model.safetensors")));
        assertFalse(Files.exists(part));
    }

    @Test
    void aServerThatStallsMidFileTimesOutAndTheNextRunResumes() throws IOException {
        hub.stalledFile = "model.safetensors";
        hub.cutAfterBytes = 150_000;
        HubSettings impatient = new HubSettings(hub.endpoint(), cacheDir, null, false, Duration.ofMillis(500));
        long start = System.nanoTime();
        HubException e = assertThrows(HubException.class, () -> new ModelLocator(impatient, null).locate(REPO, "main"));
        long waitedMs = (System.nanoTime() - start) / 1_000_000;
        assertTrue(e.getMessage().contains("no byte arrived for 500 ms"), e.getMessage());
        assertTrue(e.getMessage().contains("run again to resume"), e.getMessage());
        assertTrue(waitedMs < 20_000, "the stalled download was given up after " + waitedMs + " ms");
        assertNothingTrusted();
        Path part = repoDir().resolve("blobs/" + hub.sha256("model.safetensors") + ".incomplete");
        assertTrue(Files.size(part) > 0 && Files.size(part) <= 150_000, "bytes kept: " + Files.size(part));

        LocatedModel model = new ModelLocator(impatient, null).locate(REPO, "main");
        assertArrayEquals(Files.readAllBytes(FIXTURE.dir().resolve("model.safetensors")),
                Files.readAllBytes(model.directory().resolve("model.safetensors")));
    }

    @Test
    void aMissingRepositoryOrRevisionIsA404NamingIt() throws IOException {
        HubSettings settings = new HubSettings(hub.endpoint(), cacheDir, null, false);
        HubException repo = assertThrows(HubException.class,
                () -> new ModelLocator(settings, null).locate("kiln-test/no-such-model", "main"));
        assertTrue(repo.getMessage().contains("404") && repo.getMessage().contains("no repository kiln-test/no-such-model"),
                repo.getMessage());
        HubException revision = assertThrows(HubException.class,
                () -> new ModelLocator(settings, null).locate(REPO, "no-such-branch"));
        assertTrue(revision.getMessage().contains("no revision 'no-such-branch'"), revision.getMessage());
        assertNothingTrusted();
        assertFalse(Files.exists(repoDir().resolve("refs/no-such-branch")));
    }

    @Test
    void aPrivateOrGatedRepositoryIsA401Or403SayingHfToken() throws IOException {
        hub.requiredToken = "hf_secret";
        HubException unauthorized = failure();
        assertTrue(unauthorized.getMessage().contains("401") && unauthorized.getMessage().contains("set HF_TOKEN"),
                unauthorized.getMessage());
        assertNothingTrusted();

        hub.requiredToken = null;
        hub.failingFile = "model.safetensors";
        hub.failingFileStatus = 403;
        HubException forbidden = failure();
        assertTrue(forbidden.getMessage().contains("403") && forbidden.getMessage().contains("gated")
                && forbidden.getMessage().contains("HF_TOKEN"), forbidden.getMessage());
        assertNothingTrusted();

        // With the token: downloaded, and the token went to the Hub alone, not to the storage it redirects to.
        hub.requiredToken = "hf_secret";
        hub.failingFile = null;
        assertNotNull(locate("hf_secret"));
        List<HubFixtureServer.Request> storage = hub.requests().stream().filter(r -> r.path().startsWith("/cdn/"))
                .toList();
        assertFalse(storage.isEmpty());
        storage.forEach(r -> assertNull(r.authorization(), "the token was sent to " + r.path()));
    }

    @Test
    void offlineWithAnEmptyCacheFailsNamingTheCacheAndTouchesNoNetwork() {
        ModelLocator offline = new ModelLocator(new HubSettings(hub.endpoint(), cacheDir, null, true), null);
        HubException e = assertThrows(HubException.class, () -> offline.locate(REPO, "main"));
        assertTrue(e.getMessage().contains(repoDir().toString()), e.getMessage());
        assertTrue(e.getMessage().contains("HF_HUB_OFFLINE"), e.getMessage());
        assertEquals(List.of(), hub.requests());
    }

    @Test
    void aRepositoryWithoutSafetensorsIsRefusedBeforeAnyDownload() throws IOException {
        // Served from a directory with a config but PyTorch weights only.
        Path dir = Files.createDirectories(cacheDir.resolve("bin-only"));
        Files.copy(FIXTURE.dir().resolve("config.json"), dir.resolve("config.json"));
        Files.writeString(dir.resolve("pytorch_model.bin"), "not loaded");
        try (HubFixtureServer binOnly = new HubFixtureServer(dir, REPO)) {
            HubSettings settings = new HubSettings(binOnly.endpoint(), cacheDir, null, false);
            HubException e = assertThrows(HubException.class, () -> new ModelLocator(settings, null).locate(REPO, "main"));
            assertTrue(e.getMessage().contains("no .safetensors weights"), e.getMessage());
            assertTrue(binOnly.requests().stream().noneMatch(r -> r.path().contains("/resolve/")));
        }
        assertNothingTrusted();
    }
}
