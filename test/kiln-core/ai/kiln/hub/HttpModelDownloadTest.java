package ai.kiln.hub;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import ai.kiln.engine.LocalEngine;
import ai.kiln.model.ArtifactCompiler;
import ai.kiln.model.ArtifactTarget;
import ai.kiln.model.ModelArtifact;
import ai.kiln.model.WeightQuantization;
import ai.kiln.testing.Fixtures;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --model http://HOST/PATH/} against a real nginx ({@link NginxServer}) serving a copy of
 * the llama3-gqa fixture with its kiln-manifest.json: the model it gives, the cache that makes a
 * second run download nothing, and each way a download fails, after which nothing a later run
 * would trust is left (no snapshot manifest, no ref, no bad bytes).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HttpModelDownloadTest {

    static final Fixtures.Model FIXTURE = Fixtures.named("llama3-gqa");
    static final String WEIGHTS = "model.safetensors";

    @TempDir
    Path temp;

    Path served;      // the server's root: served/llama3-gqa is the model directory
    Path cacheDir;
    NginxServer nginx;
    int port;

    @BeforeEach
    void serveACopyOfTheFixture() throws Exception {
        NginxServer.requireBinary();
        served = temp.resolve("www");
        Path model = Files.createDirectories(served.resolve("llama3-gqa"));
        try (Stream<Path> files = Files.list(FIXTURE.dir())) {
            for (Path file : files.toList()) {
                Files.copy(file, model.resolve(file.getFileName()));
            }
        }
        ModelManifest.of(model).write(model);
        cacheDir = temp.resolve("cache");
        port = NginxServer.freePort();
        nginx = NginxServer.start(served, temp.resolve("nginx"), port, 0);
    }

    @AfterEach
    void stopNginx() {
        if (nginx != null) {
            nginx.close();
        }
    }

    ModelLocator locator() {
        // The Hugging Face cache is unused by URLs; it lies apart so that a test would see a write there.
        return new ModelLocator(new HubSettings(HubSettings.DEFAULT_ENDPOINT, temp.resolve("hf"), null, false),
                cacheDir, null);
    }

    LocatedModel locate(String path) {
        return locator().locate(nginx.url(path), null);
    }

    HubException failure(String path) {
        return assertThrows(HubException.class, () -> locate(path));
    }

    void assertNothingTrusted() throws IOException {
        ModelCacheChecks.assertNothingTrusted(cacheDir);
    }

    List<Path> blobs() throws IOException {
        return ModelCacheChecks.blobs(cacheDir);
    }

    static String sha256(Path file) throws IOException {
        return ModelManifest.sha256Of(file);
    }

    static SamplingParams greedy(int maxTokens) {
        return SamplingParams.builder().temperature(0).maxTokens(maxTokens).ignoreEos(true).build();
    }

    /** A compiled artifact written into the server's root (with its kiln-manifest.json) is served as it is. */
    @Test
    void aCompiledArtifactOnTheServerGivesTheSourcesGreedyTokens() throws Exception {
        new ArtifactCompiler(new PrintWriter(new StringWriter())).compile(FIXTURE.dir(), "llama3-gqa", null,
                ArtifactTarget.CPU, WeightQuantization.NONE, served.resolve("compiled"));
        LocatedModel model = locate("/models/compiled/");
        assertTrue(ModelArtifact.isArtifact(model.directory()), "the artifact's manifest came along");
        EngineOptions options = EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(512).build();
        try (Engine fromHttp = LocalEngine.create(model, options)) {
            for (Fixtures.Record record : FIXTURE.records()) {
                SamplingParams params = greedy(record.greedyTokenIds().length);
                assertArrayEquals(record.greedyTokenIds(),
                        fromHttp.generate(GenerateRequest.ofTokens(record.promptTokenIds(), params)).tokenIds(),
                        "HF greedy tokens of: " + record.prompt());
            }
        }
    }

    @Test
    void givesTheSameGreedyTokensAsTheLocalDirectoryAndASecondRunDownloadsNothing() throws Exception {
        LocatedModel model = locate("/models/llama3-gqa/");

        assertEquals("llama3-gqa", model.name());
        assertTrue(model.directory().startsWith(cacheDir), model.directory().toString());
        assertTrue(Files.isSymbolicLink(model.directory().resolve(WEIGHTS)));
        assertArrayEquals(Files.readAllBytes(FIXTURE.dir().resolve(WEIGHTS)),
                Files.readAllBytes(model.directory().resolve(WEIGHTS)));
        assertFalse(Files.exists(model.directory().resolve("reference.json")), "a file the manifest lacks");
        assertFalse(Files.exists(temp.resolve("hf")), "the Hugging Face cache was written");

        EngineOptions options = EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(512).build();
        try (Engine fromHttp = LocalEngine.create(model, options);
                Engine fromDir = LocalEngine.create(FIXTURE.dir(), options)) {
            assertEquals("llama3-gqa", fromHttp.modelName());
            for (Fixtures.Record record : FIXTURE.records()) {
                SamplingParams params = greedy(record.greedyTokenIds().length);
                int[] http = fromHttp.generate(GenerateRequest.ofTokens(record.promptTokenIds(), params)).tokenIds();
                int[] local = fromDir.generate(GenerateRequest.ofTokens(record.promptTokenIds(), params)).tokenIds();
                assertArrayEquals(local, http, "greedy tokens of: " + record.prompt());
                assertArrayEquals(record.greedyTokenIds(), http, "HF greedy tokens of: " + record.prompt());
            }
        }

        int before = nginx.requests().size();
        assertEquals(model.directory(), locate("/models/llama3-gqa").directory(), "with or without the slash");
        List<NginxServer.Request> second = nginx.requests().subList(before, nginx.requests().size());
        assertEquals(List.of("/models/llama3-gqa/" + ModelManifest.FILE_NAME),
                second.stream().map(NginxServer.Request::uri).toList(),
                "the second run fetched more than the manifest");

        // With the server gone, the error points to HF_HUB_OFFLINE, which takes the last whole download.
        nginx.close();
        HubException down = failure("/models/llama3-gqa/");
        assertTrue(down.getMessage().contains("no answer from " + nginx.url("/models/llama3-gqa/"))
                && down.getMessage().contains("set HF_HUB_OFFLINE=1"), down.getMessage());
        ModelLocator offline = new ModelLocator(new HubSettings(HubSettings.DEFAULT_ENDPOINT, temp.resolve("hf"),
                null, true), cacheDir, null);
        assertEquals(model.directory(), offline.locate(nginx.url("/models/llama3-gqa/"), null).directory());
    }

    /**
     * With chunks of 64 KiB the weights (560 KB) come as 9 ranged requests, the same bytes; a run
     * that kept some chunks fetches only the others (nginx's log shows each Range), and a chunk
     * listed as whole is trusted as it is (a wrong one fails the checksum, and all is deleted).
     */
    @Test
    void aLargeFileComesAsParallelRangesAndOnlyMissingChunksAreFetchedAgain() throws Exception {
        System.setProperty("kiln.download.chunkKiB", "64");
        try {
            byte[] weights = Files.readAllBytes(FIXTURE.dir().resolve(WEIGHTS));
            int chunks = (weights.length + 65535) / 65536;
            LocatedModel model = locate("/models/llama3-gqa/");
            assertArrayEquals(weights, Files.readAllBytes(model.directory().resolve(WEIGHTS)));
            List<String> ranges = nginx.requests().stream().filter(r -> r.uri().endsWith(WEIGHTS))
                    .map(NginxServer.Request::range).sorted().toList();
            assertEquals(chunks, ranges.size(), ranges.toString());
            assertTrue(ranges.contains("bytes=0-65535") && ranges.contains("bytes=" + 65536L * (chunks - 1) + "-"
                    + (weights.length - 1)), ranges.toString());
            String sha = sha256(FIXTURE.dir().resolve(WEIGHTS));
            assertEquals(List.of(), blobs().stream().filter(b -> b.getFileName().toString().startsWith(sha + "."))
                    .toList(), "the part or its ranges were left behind");

            // A run that broke off: chunks 0, 2 and 3 whole (and listed), the rest not there.
            Path dir = model.directory().getParent().getParent();
            deleteRecursively(dir);
            Path blobsDir = Files.createDirectories(dir.resolve("blobs"));
            byte[] partial = new byte[weights.length];
            for (int i : new int[] {0, 2, 3}) {
                System.arraycopy(weights, i * 65536, partial, i * 65536, 65536);
            }
            Files.write(blobsDir.resolve(sha + ".incomplete"), partial);
            String header = "chunks of 65536 bytes of " + weights.length + "\n";
            Files.writeString(blobsDir.resolve(sha + ".incomplete.ranges"), header + "0\n2\n3\n");
            int before = nginx.requests().size();
            assertArrayEquals(weights, Files.readAllBytes(locate("/models/llama3-gqa/").directory().resolve(WEIGHTS)));
            List<String> again = nginx.requests().subList(before, nginx.requests().size()).stream()
                    .filter(r -> r.uri().endsWith(WEIGHTS)).map(NginxServer.Request::range).toList();
            assertEquals(chunks - 3, again.size(), again.toString());
            assertFalse(again.contains("bytes=0-65535") || again.contains("bytes=131072-196607"), again.toString());

            // A chunk listed as whole but wrong is not fetched again: the checksum fails, nothing is kept.
            deleteRecursively(dir);
            Files.createDirectories(blobsDir);
            byte[] wrong = weights.clone();
            wrong[70_000] ^= 0x01;
            Files.write(blobsDir.resolve(sha + ".incomplete"), wrong);
            Files.writeString(blobsDir.resolve(sha + ".incomplete.ranges"), header + "1\n");
            HubException e = failure("/models/llama3-gqa/");
            assertTrue(e.getMessage().contains(WEIGHTS + " failed its checksum"), e.getMessage());
            assertNothingTrusted();
            assertEquals(List.of(), blobs().stream().filter(b -> b.getFileName().toString().startsWith(sha)).toList(),
                    "the weights' bad part or its ranges were kept");

            // A list written for other chunks, or whose part is gone, is not trusted: all is fetched again.
            deleteRecursively(dir);
            Files.createDirectories(blobsDir);
            Files.write(blobsDir.resolve(sha + ".incomplete"), wrong);
            Files.writeString(blobsDir.resolve(sha + ".incomplete.ranges"), "chunks of 131072 bytes of "
                    + weights.length + "\n0\n1\n2\n3\n");
            assertArrayEquals(weights, Files.readAllBytes(locate("/models/llama3-gqa/").directory().resolve(WEIGHTS)));
            deleteRecursively(dir);
            Files.createDirectories(blobsDir);
            Files.writeString(blobsDir.resolve(sha + ".incomplete.ranges"), header + "0\n1\n2\n3\n4\n5\n6\n7\n8\n");
            assertArrayEquals(weights, Files.readAllBytes(locate("/models/llama3-gqa/").directory().resolve(WEIGHTS)));
        } finally {
            System.clearProperty("kiln.download.chunkKiB");
        }
    }

    static void deleteRecursively(Path dir) throws IOException {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    @Test
    void aFlippedByteFailsTheChecksumAndNothingIsCached() throws IOException {
        Path weights = served.resolve("llama3-gqa").resolve(WEIGHTS);
        try (RandomAccessFile file = new RandomAccessFile(weights.toFile(), "rw")) {
            file.seek(300_000);
            int b = file.read();
            file.seek(300_000);
            file.write(b ^ 0x01);
        }
        HubException e = failure("/models/llama3-gqa/");
        assertTrue(e.getMessage().contains(WEIGHTS + " failed its checksum"), e.getMessage());
        assertTrue(e.getMessage().contains(sha256(FIXTURE.dir().resolve(WEIGHTS))), e.getMessage());
        assertTrue(e.getMessage().contains(sha256(weights)), "the received bytes' sha256: " + e.getMessage());
        assertNothingTrusted();
        String etag = sha256(FIXTURE.dir().resolve(WEIGHTS));
        assertTrue(blobs().stream().noneMatch(b -> b.getFileName().toString().startsWith(etag)),
                "the bad bytes were kept: " + blobs());

        Files.copy(FIXTURE.dir().resolve(WEIGHTS), weights, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        LocatedModel model = locate("/models/llama3-gqa/");
        assertArrayEquals(Files.readAllBytes(weights), Files.readAllBytes(model.directory().resolve(WEIGHTS)));
    }

    @Test
    void aFileTruncatedOnTheServerIsRefusedAndNothingIsKept() throws IOException {
        Path weights = served.resolve("llama3-gqa").resolve(WEIGHTS);
        byte[] whole = Files.readAllBytes(weights);
        Files.write(weights, java.util.Arrays.copyOf(whole, whole.length / 2));
        HubException e = failure("/models/llama3-gqa/");
        assertTrue(e.getMessage().contains(WEIGHTS + " is " + whole.length / 2 + " bytes on the server, "
                + whole.length + " were announced"), e.getMessage());
        assertNothingTrusted();
        String etag = sha256(FIXTURE.dir().resolve(WEIGHTS));
        assertTrue(blobs().stream().noneMatch(b -> b.getFileName().toString().startsWith(etag)),
                "the short bytes were kept: " + blobs());
    }

    @Test
    void aDirectoryWithoutAManifestIsA404SayingHowToWriteOne() throws IOException {
        Files.createDirectories(served.resolve("no-manifest"));
        HubException e = failure("/models/no-manifest/");
        assertTrue(e.getMessage().contains("404") && e.getMessage().contains(ModelManifest.FILE_NAME)
                && e.getMessage().contains("kiln manifest DIR"), e.getMessage());
        assertNothingTrusted();
        assertEquals(List.of(), blobs());
    }

    @Test
    void aForbiddenDirectoryIsA403NamingTheUrl() throws IOException {
        HubException e = failure("/forbidden/llama3-gqa/");
        assertTrue(e.getMessage().contains("HTTP 403") && e.getMessage().contains("Forbidden")
                && e.getMessage().contains(nginx.url("/forbidden/llama3-gqa/" + ModelManifest.FILE_NAME)),
                e.getMessage());
        assertNothingTrusted();
        assertEquals(List.of(), blobs());
    }

    @Test
    void aServerKilledMidFileLeavesAPartThatTheNextRunResumesWithARangeRequest() throws Exception {
        // 560 kB at 100 kB/s: the kill lands a second or so into the weights.
        nginx.close();
        nginx = NginxServer.start(served, temp.resolve("nginx-slow"), port, 100_000);
        String url = "/slow/llama3-gqa/";
        String etag = sha256(FIXTURE.dir().resolve(WEIGHTS));
        CompletableFuture<LocatedModel> first = CompletableFuture.supplyAsync(() -> locate(url));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (partSize(etag) < 100_000 && System.nanoTime() < deadline && !first.isDone()) {
            Thread.sleep(20);
        }
        nginx.kill();
        ExecutionException broke = assertThrows(ExecutionException.class, () -> first.get(20, TimeUnit.SECONDS));
        HubException e = (HubException) broke.getCause();
        assertTrue(e.getMessage().contains("the download of " + WEIGHTS + " broke off")
                && e.getMessage().contains("run again to resume"), e.getMessage());
        assertNothingTrusted();
        long kept = partSize(etag);
        long size = Files.size(FIXTURE.dir().resolve(WEIGHTS));
        assertTrue(kept >= 100_000 && kept < size, "bytes kept: " + kept + " of " + size);

        // The same URL, served again (unlimited now, to keep the test short).
        nginx = NginxServer.start(served, temp.resolve("nginx-again"), port, 0);
        LocatedModel model = locate(url);
        assertArrayEquals(Files.readAllBytes(FIXTURE.dir().resolve(WEIGHTS)),
                Files.readAllBytes(model.directory().resolve(WEIGHTS)));
        List<NginxServer.Request> resumed = nginx.requests().stream().filter(r -> r.uri().endsWith(WEIGHTS)).toList();
        assertEquals(List.of(new NginxServer.Request("GET", url + WEIGHTS, 206, "bytes=" + kept + "-")), resumed);
        assertEquals(0, partSize(etag), "the .incomplete file is gone");
    }

    long partSize(String sha256) throws IOException {
        for (Path blob : blobs()) {
            if (blob.getFileName().toString().equals(sha256 + ".incomplete")) {
                return Files.size(blob);
            }
        }
        return 0;
    }
}
