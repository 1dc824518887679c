package ai.kiln.model;

import ai.kiln.tensor.Tensor;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * The safetensors files of a model directory: model.safetensors, or the shards listed in
 * model.safetensors.index.json ("weight_map": tensor name -> file).
 */
public final class WeightFiles implements AutoCloseable {

    private final Path modelDir;
    private final Map<String, SafetensorsFile> files = new LinkedHashMap<>(); // file name -> mapping
    private final Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();

    private WeightFiles(Path modelDir) {
        this.modelDir = modelDir;
    }

    public static WeightFiles open(Path modelDir) {
        WeightFiles weights = new WeightFiles(modelDir);
        try {
            Path index = modelDir.resolve("model.safetensors.index.json");
            Path single = modelDir.resolve("model.safetensors");
            if (Files.isRegularFile(index)) {
                weights.openIndex(index);
            } else if (Files.isRegularFile(single)) {
                weights.add(single.getFileName().toString(), SafetensorsFile.open(single));
            } else {
                throw new ModelLoadException("no model.safetensors or model.safetensors.index.json in " + modelDir);
            }
            return weights;
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    /** Registers a file's tensors; a name already held by another file is refused, not shadowed. */
    private void add(String fileName, SafetensorsFile file) {
        files.put(fileName, file);
        for (String name : file.entries().keySet()) {
            SafetensorsFile other = byTensor.putIfAbsent(name, file);
            if (other != null) {
                throw new ModelLoadException(modelDir + ": tensor '" + name + "' is in both " + other.path().getFileName()
                        + " and " + fileName);
            }
        }
    }

    /**
     * Opens every shard the index names, then checks that the index and the shards' headers agree
     * exactly: each listed tensor is in the shard named for it, and each shard's tensor is listed.
     */
    private void openIndex(Path index) {
        JsonNode root = ModelConfig.readJson(index, true);
        JsonNode weightMap = root == null ? null : root.get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new ModelLoadException(index + ": no 'weight_map' object");
        }
        Map<String, String> shardOf = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            String fileName = entry.getValue().isTextual() ? entry.getValue().textValue() : "";
            Path shard = null;
            try {
                shard = modelDir.resolve(fileName).normalize();
            } catch (InvalidPathException e) {
                // a name no file can have (a NUL byte): refused below like any other bad name
            }
            if (fileName.isEmpty() || shard == null || !modelDir.normalize().equals(shard.getParent())) {
                throw new ModelLoadException(index + ": tensor '" + entry.getKey() + "' maps to bad file name '"
                        + entry.getValue().asText() + "'");
            }
            shardOf.put(entry.getKey(), fileName);
        }
        for (String fileName : new LinkedHashSet<>(shardOf.values())) {
            add(fileName, SafetensorsFile.open(modelDir.resolve(fileName)));
        }
        for (Map.Entry<String, String> entry : shardOf.entrySet()) {
            SafetensorsFile file = files.get(entry.getValue());
            if (!file.contains(entry.getKey())) {
                throw new ModelLoadException(file.path() + ": missing tensor '" + entry.getKey()
                        + "' that " + index.getFileName() + " places there");
            }
        }
        for (String name : byTensor.keySet()) {
            if (!shardOf.containsKey(name)) {
                throw new ModelLoadException(byTensor.get(name).path() + ": tensor '" + name + "' is not listed in "
                        + index.getFileName());
            }
        }
    }

    /** The directory the files are in. */
    public Path directory() {
        return modelDir;
    }

    /** Bytes of tensor data over all files (what a full load reads). */
    public long totalTensorBytes() {
        long total = 0;
        for (SafetensorsFile file : files.values()) {
            for (SafetensorsFile.Entry entry : file.entries().values()) {
                total += entry.end() - entry.begin();
            }
        }
        return total;
    }

    public boolean contains(String name) {
        return byTensor.containsKey(name);
    }

    /** Every tensor name over all files. */
    public Set<String> tensorNames() {
        return Collections.unmodifiableSet(byTensor.keySet());
    }

    /** The file that holds a tensor (for error messages). */
    public Path fileOf(String name) {
        SafetensorsFile file = byTensor.get(name);
        return file == null ? modelDir : file.path();
    }

    /** A host view of a tensor's bytes; a missing tensor is an error naming the files searched. */
    public Tensor tensor(String name) {
        SafetensorsFile file = byTensor.get(name);
        if (file == null) {
            throw new ModelLoadException(modelDir + ": missing tensor '" + name + "' in " + files.keySet());
        }
        return file.tensor(name);
    }

    @Override
    public void close() {
        files.values().forEach(SafetensorsFile::close);
        files.clear();
        byTensor.clear();
    }
}
