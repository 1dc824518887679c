package ai.kiln.s3;

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
import ai.kiln.hub.HubException;
import ai.kiln.hub.HubSettings;
import ai.kiln.hub.LocatedModel;
import ai.kiln.model.ArtifactCompiler;
import ai.kiln.model.ArtifactTarget;
import ai.kiln.model.ModelArtifact;
import ai.kiln.model.WeightQuantization;
import ai.kiln.hub.ModelCacheChecks;
import ai.kiln.hub.ModelLocator;
import ai.kiln.hub.ModelManifest;
import ai.kiln.testing.Fixtures;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.gaul.s3proxy.AuthenticationType;
import org.gaul.s3proxy.S3Proxy;
import org.jclouds.ContextBuilder;
import org.jclouds.blobstore.BlobStoreContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * {@code kiln publish} and {@code --model s3://BUCKET/PREFIX} against a real S3 API server:
 * S3Proxy in this JVM, with AWS signature checks, on a folder. The llama3-gqa fixture published
 * gives the local directory's greedy tokens; a second run downloads nothing and a second publish
 * uploads nothing; a download broken off is resumed; and each failure (a flipped byte, a truncated
 * object, a missing file, no manifest, no bucket, wrong credentials) says what is wrong and leaves
 * nothing in the cache that a later run would trust.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class S3ModelStoreTest {

    static final Fixtures.Model FIXTURE = Fixtures.named("llama3-gqa");
    static final String WEIGHTS = "model.safetensors";
    static final String BUCKET = "models";
    static final String ACCESS_KEY = "kiln-test-access";
    static final String SECRET_KEY = "kiln-test-secret";

    @TempDir
    Path temp;

    Path model;     // a copy of the fixture, the directory published
    Path cacheDir;
    BlobStoreContext blobStore;
    S3Proxy proxy;
    String endpoint;

    @org.junit.jupiter.api.BeforeAll
    static void quietServerLog() {
        // S3Proxy brings Logback, whose default is DEBUG for everything: its Jetty's and jclouds' chatter.
        ((ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME))
                .setLevel(ch.qos.logback.classic.Level.WARN);
    }

    @BeforeEach
    void startS3Proxy() throws Exception {
        model = Files.createDirectories(temp.resolve("llama3-gqa"));
        try (Stream<Path> files = Files.list(FIXTURE.dir())) {
            for (Path file : files.toList()) {
                Files.copy(file, model.resolve(file.getFileName()));
            }
        }
        cacheDir = temp.resolve("cache");
        Properties properties = new Properties();
        properties.setProperty("jclouds.filesystem.basedir", Files.createDirectories(temp.resolve("s3")).toString());
        blobStore = ContextBuilder.newBuilder("filesystem").credentials("identity", "credential").overrides(properties)
                .build(BlobStoreContext.class);
        blobStore.getBlobStore().createContainerInLocation(null, BUCKET);
        proxy = S3Proxy.builder().blobStore(blobStore.getBlobStore()).endpoint(URI.create("http://127.0.0.1:0"))
                .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY).build();
        proxy.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!AbstractLifeCycle.STARTED.equals(proxy.getState())) {
            assertTrue(System.nanoTime() < deadline, "S3Proxy did not start");
            Thread.sleep(20);
        }
        endpoint = "http://127.0.0.1:" + proxy.getPort();
        // The SDK's default chains read these (the environment cannot be set from Java).
        System.setProperty("aws.accessKeyId", ACCESS_KEY);
        System.setProperty("aws.secretAccessKey", SECRET_KEY);
        System.setProperty("aws.region", "us-east-1");
        System.setProperty("aws.endpointUrl", endpoint);
    }

    @AfterEach
    void stopS3Proxy() throws Exception {
        for (String property : List.of("aws.accessKeyId", "aws.secretAccessKey", "aws.region", "aws.endpointUrl")) {
            System.clearProperty(property);
        }
        if (proxy != null) {
            proxy.stop();
        }
        if (blobStore != null) {
            blobStore.close();
        }
    }

    ModelLocator locator() {
        // The Hugging Face cache is unused by s3:// models; it lies apart so that a test would see a write there.
        return new ModelLocator(new HubSettings(HubSettings.DEFAULT_ENDPOINT, temp.resolve("hf"), null, false),
                cacheDir, null);
    }

    LocatedModel locate(String url) {
        return locator().locate(url, null);
    }

    HubException failure(String url) {
        return assertThrows(HubException.class, () -> locate(url));
    }

    String publish(String prefix) throws IOException {
        String url = "s3://" + BUCKET + "/" + prefix;
        new S3Publisher(null).publish(model, url);
        return url;
    }

    S3Client client() {
        return S3Clients.create(Optional.of(URI.create(endpoint)));
    }

    void assertNothingTrusted() throws IOException {
        ModelCacheChecks.assertNothingTrusted(cacheDir);
    }

    List<Path> blobs() throws IOException {
        return ModelCacheChecks.blobs(cacheDir);
    }

    static String sha256(Path file) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }

    static SamplingParams greedy(int maxTokens) {
        return SamplingParams.builder().temperature(0).maxTokens(maxTokens).ignoreEos(true).build();
    }

    @Test
    void aPublishedModelGivesTheLocalDirectorysGreedyTokensAndASecondRunDownloadsNothing() throws Exception {
        String url = publish("team/llama3-gqa");
        LocatedModel located = locate(url);

        assertEquals("llama3-gqa", located.name());
        assertTrue(located.directory().startsWith(cacheDir), located.directory().toString());
        assertArrayEquals(Files.readAllBytes(FIXTURE.dir().resolve(WEIGHTS)),
                Files.readAllBytes(located.directory().resolve(WEIGHTS)));
        assertFalse(Files.exists(located.directory().resolve("reference.json")), "a file the manifest lacks");
        assertFalse(Files.exists(temp.resolve("hf")), "the Hugging Face cache was written");
        EngineOptions options = EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(512).build();
        try (Engine fromS3 = LocalEngine.create(located, options);
                Engine fromDir = LocalEngine.create(FIXTURE.dir(), options)) {
            for (Fixtures.Record record : FIXTURE.records()) {
                SamplingParams params = greedy(record.greedyTokenIds().length);
                int[] s3 = fromS3.generate(GenerateRequest.ofTokens(record.promptTokenIds(), params)).tokenIds();
                int[] local = fromDir.generate(GenerateRequest.ofTokens(record.promptTokenIds(), params)).tokenIds();
                assertArrayEquals(local, s3, "greedy tokens of: " + record.prompt());
                assertArrayEquals(record.greedyTokenIds(), s3, "HF greedy tokens of: " + record.prompt());
            }
        }

        // A second run reads the manifest and downloads nothing: the blobs stay as they were.
        List<Path> blobsBefore = blobs();
        Path weightsBlob = located.directory().resolve(WEIGHTS).toRealPath();
        FileTime written = Files.getLastModifiedTime(weightsBlob);
        Thread.sleep(20);
        assertEquals(located.directory(), locate(url + "/").directory(), "with or without the slash");
        assertEquals(blobsBefore, blobs());
        assertEquals(written, Files.getLastModifiedTime(weightsBlob), "the weights were downloaded again");

        // A second publish uploads nothing.
        ByteArrayOutputStream report = new ByteArrayOutputStream();
        new S3Publisher(new PrintWriter(report, true, StandardCharsets.UTF_8)).publish(model, url);
        String text = report.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("unchanged team/llama3-gqa/" + WEIGHTS) && text.contains(", 0 bytes uploaded"), text);

        // With the store gone, HF_HUB_OFFLINE takes the last whole download.
        proxy.stop();
        HubException down = failure(url);
        assertTrue(down.getMessage().contains("no answer") && down.getMessage().contains("HF_HUB_OFFLINE=1"),
                down.getMessage());
        ModelLocator offline = new ModelLocator(new HubSettings(HubSettings.DEFAULT_ENDPOINT, temp.resolve("hf"),
                null, true), cacheDir, null);
        assertEquals(located.directory(), offline.locate(url, null).directory());
    }

    /** The seed's pipeline: a model compiled, published, and served from the store. */
    @Test
    void aCompiledArtifactPublishedToTheStoreGivesTheSourcesGreedyTokens() throws Exception {
        Path artifact = temp.resolve("compiled");
        new ArtifactCompiler(new PrintWriter(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8))
                .compile(FIXTURE.dir(), "llama3-gqa", null, ArtifactTarget.CPU, WeightQuantization.NONE, artifact);
        String url = "s3://" + BUCKET + "/compiled/llama3-gqa";
        new S3Publisher(null).publish(artifact, url);
        LocatedModel located = locate(url);
        assertTrue(ModelArtifact.isArtifact(located.directory()), "the artifact's manifest came along");
        EngineOptions options = EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(512).build();
        try (Engine fromS3 = LocalEngine.create(located, options)) {
            for (Fixtures.Record record : FIXTURE.records()) {
                SamplingParams params = greedy(record.greedyTokenIds().length);
                assertArrayEquals(record.greedyTokenIds(),
                        fromS3.generate(GenerateRequest.ofTokens(record.promptTokenIds(), params)).tokenIds(),
                        "HF greedy tokens of: " + record.prompt());
            }
        }
    }

    @Test
    void aDownloadBrokenOffIsResumedFromWhatArrived() throws Exception {
        String url = publish("llama3-gqa");
        byte[] weights = Files.readAllBytes(FIXTURE.dir().resolve(WEIGHTS));
        String sha = sha256(FIXTURE.dir().resolve(WEIGHTS));
        // What a run that broke off half-way leaves: the first half in the blob's .incomplete file.
        Path modelDir = locate(url).directory().getParent().getParent(); // the model's cache folder
        try (Stream<Path> all = Files.walk(modelDir)) {
            for (Path p : all.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) {
                if (!p.equals(modelDir)) {
                    Files.delete(p);
                }
            }
        }
        Path blobs = Files.createDirectories(modelDir.resolve("blobs"));
        Files.write(blobs.resolve(sha + ".incomplete"), Arrays.copyOf(weights, weights.length / 2));

        LocatedModel resumed = locate(url);
        assertArrayEquals(weights, Files.readAllBytes(resumed.directory().resolve(WEIGHTS)));
        assertFalse(Files.exists(blobs.resolve(sha + ".incomplete")));

        // The rest really comes as a ranged read appended to what is there: a first half that is not
        // the object's fails the checksum (a whole new download would not), and is deleted.
        Files.delete(resumed.directory().resolve(WEIGHTS));
        Files.delete(blobs.resolve(sha));
        Files.delete(modelDir.resolve("refs").resolve("latest"));
        Files.delete(resumed.directory().resolve(ModelManifest.FILE_NAME));
        byte[] wrongHalf = Arrays.copyOf(weights, weights.length / 2);
        wrongHalf[10] ^= 0x01;
        Files.write(blobs.resolve(sha + ".incomplete"), wrongHalf);
        HubException e = failure(url);
        assertTrue(e.getMessage().contains(WEIGHTS + " failed its checksum"), e.getMessage());
        assertFalse(Files.exists(blobs.resolve(sha + ".incomplete")));
        assertArrayEquals(weights, Files.readAllBytes(locate(url).directory().resolve(WEIGHTS)));
    }

    /** With chunks of 64 KiB the weights come as ranged GETs (the same bytes); a truncated object is refused. */
    @Test
    void aLargeObjectComesAsRangedReadsAndATruncatedOneIsRefused() throws Exception {
        System.setProperty("kiln.download.chunkKiB", "64");
        try {
            String url = publish("llama3-gqa");
            assertArrayEquals(Files.readAllBytes(FIXTURE.dir().resolve(WEIGHTS)),
                    Files.readAllBytes(locate(url).directory().resolve(WEIGHTS)));

            String other = publish("truncated/llama3-gqa");
            byte[] weights = Files.readAllBytes(model.resolve(WEIGHTS));
            try (S3Client s3 = client()) {
                s3.putObject(b -> b.bucket(BUCKET).key("truncated/llama3-gqa/" + WEIGHTS),
                        RequestBody.fromBytes(Arrays.copyOf(weights, weights.length - 70_000)));
            }
            HubException e = failure(other);
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
            // (the first model's download finished whole, so any part left is the truncated one's)
            assertEquals(List.of(), blobs().stream().map(b -> b.getFileName().toString())
                    .filter(name -> name.endsWith(".incomplete") || name.endsWith(".ranges")).toList(),
                    "a part or its ranges were kept");
        } finally {
            System.clearProperty("kiln.download.chunkKiB");
        }
    }

    /** A file past the multipart threshold goes up in parts (here 12 MiB in parts of 5) and comes back whole. */
    @Test
    void aLargeFileIsPublishedInPartsAndASecondPublishSkipsIt() throws Exception {
        byte[] large = new byte[12 << 20];
        new java.util.Random(7).nextBytes(large);
        Files.write(model.resolve("extra.safetensors"), large);
        System.setProperty("kiln.s3.multipartMiB", "8");
        System.setProperty("kiln.s3.partMiB", "5");
        try {
            ByteArrayOutputStream report = new ByteArrayOutputStream();
            String url = "s3://" + BUCKET + "/parts/llama3-gqa";
            new S3Publisher(new PrintWriter(report, true, StandardCharsets.UTF_8)).publish(model, url);
            String text = report.toString(StandardCharsets.UTF_8);
            assertTrue(text.contains("part 3 of parts/llama3-gqa/extra.safetensors (2097152 bytes)"), text);
            assertArrayEquals(large, Files.readAllBytes(locate(url).directory().resolve("extra.safetensors")));
            report.reset();
            new S3Publisher(new PrintWriter(report, true, StandardCharsets.UTF_8)).publish(model, url);
            text = report.toString(StandardCharsets.UTF_8);
            assertTrue(text.contains("unchanged parts/llama3-gqa/extra.safetensors"), text);
        } finally {
            System.clearProperty("kiln.s3.multipartMiB");
            System.clearProperty("kiln.s3.partMiB");
        }
    }

    @Test
    void aFlippedByteFailsTheChecksumAndNothingIsCached() throws Exception {
        String url = publish("llama3-gqa");
        byte[] weights = Files.readAllBytes(model.resolve(WEIGHTS));
        weights[weights.length / 3] ^= 0x01;
        try (S3Client s3 = client()) {
            s3.putObject(b -> b.bucket(BUCKET).key("llama3-gqa/" + WEIGHTS), RequestBody.fromBytes(weights));
        }
        HubException e = failure(url);
        assertTrue(e.getMessage().contains(WEIGHTS + " failed its checksum"), e.getMessage());
        assertNothingTrusted();
        String sha = sha256(FIXTURE.dir().resolve(WEIGHTS));
        assertTrue(blobs().stream().noneMatch(b -> b.getFileName().toString().startsWith(sha)),
                "the bad bytes were kept: " + blobs());
    }

    @Test
    void aTruncatedObjectIsRefusedAndNothingIsKept() throws Exception {
        String url = publish("llama3-gqa");
        byte[] weights = Files.readAllBytes(model.resolve(WEIGHTS));
        try (S3Client s3 = client()) {
            s3.putObject(b -> b.bucket(BUCKET).key("llama3-gqa/" + WEIGHTS),
                    RequestBody.fromBytes(Arrays.copyOf(weights, weights.length - 1000)));
        }
        HubException e = failure(url);
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        assertNothingTrusted();
        assertEquals(List.of(), blobs().stream().filter(b -> b.getFileName().toString().contains(".incomplete"))
                .toList());
    }

    @Test
    void aFileTheManifestListsButTheBucketLacksIsNamed() throws Exception {
        String url = publish("llama3-gqa");
        try (S3Client s3 = client()) {
            s3.deleteObject(b -> b.bucket(BUCKET).key("llama3-gqa/" + WEIGHTS));
        }
        HubException e = failure(url);
        assertTrue(e.getMessage().contains(WEIGHTS) && e.getMessage().contains("not found"), e.getMessage());
        assertNothingTrusted();
    }

    @Test
    void aPrefixWithoutAManifestSaysToPublish() {
        HubException e = failure("s3://" + BUCKET + "/nothing-here");
        assertTrue(e.getMessage().contains("no " + ModelManifest.FILE_NAME)
                && e.getMessage().contains("kiln publish DIR s3://" + BUCKET + "/nothing-here"), e.getMessage());
        assertFalse(Files.exists(cacheDir.resolve("snapshots")));
    }

    @Test
    void aMissingBucketWrongCredentialsAndABadUrlAreNamed() throws Exception {
        HubException noBucket = failure("s3://no-such-bucket/llama3-gqa");
        assertTrue(noBucket.getMessage().contains("the bucket no-such-bucket does not exist"), noBucket.getMessage());

        publish("llama3-gqa");
        System.setProperty("aws.secretAccessKey", "not-the-secret");
        HubException denied = failure("s3://" + BUCKET + "/llama3-gqa");
        assertTrue(denied.getMessage().contains("access denied") && denied.getMessage().contains("AWS_ACCESS_KEY_ID"),
                denied.getMessage());
        assertNothingTrusted();

        HubException badName = failure("s3://No_Such/x");
        assertTrue(badName.getMessage().contains("is not an S3 bucket name"), badName.getMessage());
    }
}
