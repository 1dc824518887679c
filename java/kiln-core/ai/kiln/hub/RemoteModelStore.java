package ai.kiln.hub;

import java.io.InputStream;

/**
 * A store of model directories that Kiln reads by URL, beside the local directories, the Hugging
 * Face Hub and the http(s):// file servers it knows itself: found through {@link
 * java.util.ServiceLoader} (kiln-s3 adds {@code s3://}). A store's model directory holds a {@code
 * kiln-manifest.json} ({@link ModelManifest}, written by {@code kiln manifest DIR}) and the files
 * it lists; {@link ManifestSnapshots} downloads them into Kiln's cache, checked and whole.
 */
public interface RemoteModelStore {

    /** Whether this store reads {@code model} (its URL scheme). */
    boolean accepts(String model);

    /**
     * The model at {@code model} from the cache, downloading what it lacks through {@code snapshots}.
     *
     * @throws HubException with what failed and what to do
     */
    LocatedModel locate(String model, ManifestSnapshots snapshots);

    /** Byte ranges of the files of one model directory in a store. */
    interface Ranges {

        /**
         * The bytes of {@code file} (a manifest path) from byte {@code from} to byte {@code to}
         * (inclusive; -1: to its end).
         *
         * @throws RangeNotSatisfiable where {@code from} lies past the file's end
         * @throws HubException where the store refuses or cannot be reached, saying what to do
         */
        Body open(String file, long from, long to);
    }

    /** The files of one model directory in a store: its manifest, and ranges of the files it lists. */
    interface Files extends Ranges {

        /**
         * The bytes of the directory's manifest.
         *
         * @throws HubException where it cannot be read, saying why
         */
        byte[] manifest();
    }

    /**
     * An open file's bytes.
     *
     * @param stream the bytes, closed by the reader
     * @param ranged whether they are the range asked for (false: the whole file, the store having
     *     ignored the range)
     */
    record Body(InputStream stream, boolean ranged) {
    }

    /** A store's answer that the offset asked for lies past the file's end (HTTP 416). */
    final class RangeNotSatisfiable extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public RangeNotSatisfiable(String message) {
            super(message);
        }
    }
}
