package ai.kiln.hub;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** What the model-store tests check of Kiln's cache of downloaded models ({@link ManifestSnapshots}). */
public final class ModelCacheChecks {

    private ModelCacheChecks() {
    }

    /** No snapshot manifest and no ref under {@code cacheDir}: a later run would download again, not trust what is there. */
    public static void assertNothingTrusted(Path cacheDir) throws IOException {
        if (!Files.exists(cacheDir)) {
            return;
        }
        try (Stream<Path> all = Files.walk(cacheDir)) {
            List<Path> trusted = all.filter(p -> p.getFileName().toString().equals(ModelManifest.FILE_NAME)
                    || p.getFileName().toString().equals(ManifestSnapshots.LATEST_REF)).toList();
            assertEquals(List.of(), trusted, "written as if whole");
        }
    }

    /** Every file under the cache's blobs folders, .incomplete ones and their .ranges included. */
    public static List<Path> blobs(Path cacheDir) throws IOException {
        if (!Files.exists(cacheDir)) {
            return List.of();
        }
        try (Stream<Path> all = Files.walk(cacheDir)) {
            return all.filter(p -> p.getParent().getFileName().toString().equals("blobs")).toList();
        }
    }
}
