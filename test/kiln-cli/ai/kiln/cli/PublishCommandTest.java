package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln publish}'s refusals before any request (the uploads themselves are tested against a
 * real S3 API server in kiln-s3's S3ModelStoreTest).
 */
class PublishCommandTest {

    @TempDir
    Path dir;

    @Test
    void refusesAMissingDirectoryAUrlThatIsNotS3AndABadBucketName() {
        GenerateCommandTest.Run missing = GenerateCommandTest.kiln("publish", dir.resolve("nothing").toString(),
                "s3://models/x");
        assertEquals(2, missing.exitCode());
        assertTrue(missing.err().contains("is not a directory"), missing.err());

        String model = Fixtures.named("llama3-gqa").dir().toString();
        GenerateCommandTest.Run http = GenerateCommandTest.kiln("publish", model, "https://files.example/models/x/");
        assertEquals(2, http.exitCode());
        assertTrue(http.err().contains("is not s3://BUCKET/PREFIX") && http.err().contains("kiln manifest DIR"),
                http.err());

        GenerateCommandTest.Run badBucket = GenerateCommandTest.kiln("publish", model, "s3://Not_A_Bucket/x");
        assertEquals(1, badBucket.exitCode());
        assertTrue(badBucket.err().contains("is not an S3 bucket name"), badBucket.err());
    }

    @Test
    void aDirectoryWithoutWeightsIsRefusedBeforeAnyUpload() throws Exception {
        Path configOnly = Files.createDirectories(dir.resolve("config-only"));
        Files.copy(Fixtures.named("llama3-gqa").dir().resolve("config.json"), configOnly.resolve("config.json"));
        GenerateCommandTest.Run refused = GenerateCommandTest.kiln("publish", configOnly.toString(), "s3://models/x");
        assertEquals(1, refused.exitCode());
        assertTrue(refused.err().contains("not a model directory"), refused.err());
    }
}
