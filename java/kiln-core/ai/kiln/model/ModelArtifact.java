package ai.kiln.model;

import ai.kiln.backend.Backend;
import ai.kiln.backend.InputQuantization;
import ai.kiln.hub.ModelManifest;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A compiled model (`kiln compile`): a directory whose weights are already in the layout, dtype
 * and fusion one target's backend keeps them in ({@link ModelWeights#namedTensors()}), packed into
 * a few safetensors files with every tensor's data 4096-byte aligned, beside the source's config,
 * tokenizer and chat template, and described by {@value #MANIFEST}: format and version, target,
 * quantisation, the FP8 layers' input quantisation, whether the LM head is tied, the source (name,
 * revision, each file's size and sha256) and each file of the artifact with its size and sha256.
 * Loading copies each tensor into backend memory as it is.
 *
 * <p>A load checks every file's size, and its sha256 unless {@value #VERIFIED} (written after a
 * full check, when the directory is writable) records the same size, modification time and
 * manifest sha256. The manifest must list every file a load reads (config, index, weights).
 *
 * @param directory    where the artifact is
 * @param version      its format version
 * @param target       what it is laid out for
 * @param quantization how its linear layers are stored
 * @param tiedLmHead   whether the LM head is the embedding table
 * @param inputs       each FP8 linear layer's input quantisation, by artifact name
 * @param files        the artifact's files other than the manifest
 */
public record ModelArtifact(Path directory, int version, ArtifactTarget target, WeightQuantization quantization,
        boolean tiedLmHead, Map<String, InputQuantization> inputs, List<ModelManifest.Entry> files) {

    public static final String MANIFEST = "kiln-artifact.json";
    static final String INDEX = "model.safetensors.index.json";
    /** Sizes and modification times of files whose sha256 was checked. */
    public static final String VERIFIED = "kiln-artifact.verified";
    public static final String FORMAT = "kiln-artifact";
    /** The newest format version this Kiln reads (and the one it writes). */
    public static final int VERSION = 1;

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Whether dir holds a compiled artifact (its manifest). */
    public static boolean isArtifact(Path dir) {
        return Files.isRegularFile(dir.resolve(MANIFEST));
    }

    /** Reads and checks an artifact's manifest and files; any problem is a {@link ModelLoadException} naming it. */
    public static ModelArtifact open(Path dir) {
        Path manifest = dir.resolve(MANIFEST);
        JsonNode root = ModelConfig.readJson(manifest, true);
        if (root == null || !root.isObject() || !FORMAT.equals(root.path("format").asText())) {
            throw new ModelLoadException(manifest + ": not a Kiln artifact manifest (no \"format\": \"" + FORMAT
                    + "\")");
        }
        int version = root.path("version").asInt(-1);
        if (version > VERSION) {
            throw new ModelLoadException(manifest + ": format version " + version + " is newer than this Kiln reads ("
                    + VERSION + "); load it with a newer Kiln or compile the model again");
        }
        if (version < 1) {
            throw new ModelLoadException(manifest + ": bad format version " + root.path("version"));
        }
        ArtifactTarget target;
        WeightQuantization quantization;
        try {
            target = ArtifactTarget.fromFlag(root.path("target").asText());
            quantization = WeightQuantization.valueOf(root.path("quantization").asText().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new ModelLoadException(manifest + ": " + e.getMessage());
        }
        Map<String, InputQuantization> inputs = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.path("input_quantization").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            JsonNode node = entry.getValue();
            try {
                inputs.put(entry.getKey(), new InputQuantization(
                        InputQuantization.Mode.valueOf(node.path("mode").asText()),
                        (float) node.path("static_scale").asDouble(), (float) node.path("scale_upper_bound").asDouble()));
            } catch (IllegalArgumentException e) {
                throw new ModelLoadException(manifest + ": input_quantization of '" + entry.getKey() + "': "
                        + e.getMessage());
            }
        }
        List<ModelManifest.Entry> files = new ArrayList<>();
        for (JsonNode file : root.path("files")) {
            try {
                files.add(new ModelManifest.Entry(file.path("path").asText(), file.path("size").asLong(-1),
                        file.path("sha256").asText()));
            } catch (IllegalArgumentException e) {
                throw new ModelLoadException(manifest + ": " + e.getMessage());
            }
        }
        requireCovered(dir, files);
        if (!target.supports(quantization)) {
            throw new ModelLoadException(manifest + ": quantization " + quantization.name().toLowerCase(Locale.ROOT)
                    + " does not run on its target " + target);
        }
        ModelArtifact artifact = new ModelArtifact(dir, version, target, quantization,
                root.path("tied_lm_head").asBoolean(), inputs, files);
        artifact.verify();
        return artifact;
    }

    /**
     * Every file a load reads is one the manifest lists (and so one whose size and sha256 are
     * checked): the config, the weights index and each weights file the index names.
     */
    private static void requireCovered(Path dir, List<ModelManifest.Entry> files) {
        java.util.Set<String> listed = new java.util.HashSet<>();
        files.forEach(f -> listed.add(f.path()));
        List<String> needed = new ArrayList<>(List.of("config.json", INDEX));
        if (listed.contains(INDEX)) {
            JsonNode weightMap = ModelConfig.readJson(dir.resolve(INDEX), true).path("weight_map");
            weightMap.forEach(file -> needed.add(file.asText()));
        }
        for (String file : needed) {
            if (!listed.contains(file)) {
                throw new ModelLoadException(dir.resolve(MANIFEST) + ": does not list " + file + ", which a load reads");
            }
        }
    }

    /**
     * The weights on the backend, copied as they are stored. Refused when the artifact was compiled
     * for another target, or with another quantisation than the one asked for (NONE: as compiled).
     */
    public ModelWeights loadWeights(ModelConfig config, Backend backend, WeightQuantization requested) {
        if (!target.flagName.equals(backend.artifactTarget())) {
            boolean known = java.util.Arrays.stream(ArtifactTarget.values())
                    .anyMatch(t -> t.flagName.equals(backend.artifactTarget()));
            throw new ModelLoadException(directory + " is compiled for " + target + "; this " + backend.name()
                    + " backend runs " + backend.artifactTarget() + " artifacts" + (known
                            ? " (kiln compile --target " + backend.artifactTarget() + ")"
                            : ", which Kiln does not compile: load the source model directory instead"));
        }
        // (an FP8 checkpoint's artifact holds FP8 weights whatever it was compiled with)
        boolean fp8Weights = quantization == WeightQuantization.FP8 || config.fp8() != null;
        boolean same = requested == quantization || (requested == WeightQuantization.FP8 && fp8Weights);
        if (requested != WeightQuantization.NONE && !same) {
            throw new ModelLoadException(directory + " is compiled with quantization "
                    + quantization.name().toLowerCase(Locale.ROOT) + "; quantization "
                    + requested.name().toLowerCase(Locale.ROOT) + " needs it compiled again with that quantization");
        }
        try (WeightFiles weights = WeightFiles.open(directory)) {
            return ModelWeights.loadLayout(config, weights, backend, quantization, inputs, tiedLmHead);
        }
    }

    /** Sizes always; sha256 unless the verified stamp vouches for the file as it is now. */
    private void verify() {
        Map<String, String> stamped = readStamp();
        Map<String, String> stamp = new LinkedHashMap<>();
        boolean hashed = false;
        for (ModelManifest.Entry file : files) {
            Path path = directory.resolve(file.path());
            long size;
            String state;
            try {
                size = Files.size(path);
                state = size + " " + Files.getLastModifiedTime(path).toMillis() + " " + file.sha256();
            } catch (NoSuchFileException e) {
                throw new ModelLoadException(directory + ": missing " + file.path() + ", which " + MANIFEST + " lists");
            } catch (IOException e) {
                throw new ModelLoadException(directory + ": cannot read " + file.path() + ": " + e.getMessage());
            }
            if (size != file.size()) {
                throw new ModelLoadException(directory + ": " + file.path() + " has " + size + " bytes, " + MANIFEST
                        + " says " + file.size());
            }
            if (!state.equals(stamped.get(file.path()))) {
                String sha256 = hash(path);
                if (!sha256.equals(file.sha256())) {
                    throw new ModelLoadException(directory + ": " + file.path() + " has sha256 " + sha256 + ", "
                            + MANIFEST + " says " + file.sha256() + " (the file is damaged; copy it again)");
                }
                hashed = true;
            }
            stamp.put(file.path(), state);
        }
        if (hashed) {
            writeStamp(stamp);
        }
    }

    private static String hash(Path path) {
        try {
            return ModelManifest.sha256Of(path);
        } catch (IOException e) {
            throw new ModelLoadException(path + ": cannot read: " + e.getMessage());
        }
    }

    private Map<String, String> readStamp() {
        Map<String, String> stamp = new LinkedHashMap<>();
        Path path = directory.resolve(VERIFIED);
        if (!Files.isRegularFile(path)) {
            return stamp;
        }
        try {
            JsonNode root = JSON.readTree(path.toFile());
            root.fields().forEachRemaining(e -> stamp.put(e.getKey(), e.getValue().asText()));
        } catch (IOException | RuntimeException e) {
            // NOTE: an unreadable stamp only means every file is hashed again.
            stamp.clear();
        }
        return stamp;
    }

    private void writeStamp(Map<String, String> stamp) {
        ObjectNode root = JSON.createObjectNode();
        stamp.forEach(root::put);
        Path path = directory.resolve(VERIFIED);
        Path partial = directory.resolve(VERIFIED + ".partial");
        try {
            Files.write(partial, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root));
            Files.move(partial, path, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            // NOTE: a read-only artifact is hashed on every load instead.
            try {
                Files.deleteIfExists(partial);
            } catch (IOException ignored) {
                // nothing was written
            }
        }
    }

    /** The manifest's JSON for an artifact being written (the compiler's). */
    static ObjectNode manifestJson(ArtifactTarget target, WeightQuantization quantization, boolean tiedLmHead,
            Map<String, InputQuantization> inputs, ObjectNode source, List<ModelManifest.Entry> files) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.put("version", VERSION);
        root.put("target", target.flagName);
        root.put("quantization", quantization.name().toLowerCase(Locale.ROOT));
        String kiln = ModelArtifact.class.getPackage().getImplementationVersion();
        root.put("kiln_version", kiln != null ? kiln : "development");
        root.put("tied_lm_head", tiedLmHead);
        ObjectNode inputNode = root.putObject("input_quantization");
        inputs.forEach((name, q) -> inputNode.putObject(name).put("mode", q.mode().name())
                .put("static_scale", q.staticScale()).put("scale_upper_bound", q.scaleUpperBound()));
        root.set("source", source);
        ArrayNode fileNode = root.putArray("files");
        for (ModelManifest.Entry file : files) {
            fileNode.addObject().put("path", file.path()).put("size", file.size()).put("sha256", file.sha256());
        }
        return root;
    }

    static ObjectMapper json() {
        return JSON;
    }
}
