package ai.kiln.hub;

import java.nio.file.Path;

/**
 * A model found on disk: its directory (given, or a snapshot in the Hugging Face cache) and the
 * name it is served under (the directory's name, or the Hub id).
 */
public record LocatedModel(Path directory, String name) {

    public LocatedModel {
        if (directory == null || name == null || name.isEmpty()) {
            throw new IllegalArgumentException("a located model needs its directory and name");
        }
    }

    /** A model directory given as it is, named after itself. */
    public static LocatedModel ofDirectory(Path directory) {
        Path name = directory.toAbsolutePath().normalize().getFileName();
        return new LocatedModel(directory, name == null ? directory.toString() : name.toString());
    }
}
