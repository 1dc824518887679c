package ai.kiln.model;

import ai.kiln.tensor.Tensor;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The safetensors files of a model directory: model.safetensors, or the shards listed in
 * model.safetensors.index.json ("weight_map": tensor name -> file).
 */
public final class WeightFiles implements AutoCloseable {

    private final Path modelDir;
    private final Map<String, SafetensorsFile> files = new LinkedHashMap<>(); // file name -> mapping
    private final Map<String, SafetensorsFile> byTensor = new HashMap<>();

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
                SafetensorsFile file = SafetensorsFile.open(single);
                weights.files.put(single.getFileName().toString(), file);
                file.entries().keySet().forEach(name -> weights.byTensor.put(name, file));
            } else {
                throw new ModelLoadException("no model.safetensors or model.safetensors.index.json in " + modelDir);
            }
            return weights;
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    private void openIndex(Path index) {
        JsonNode root = ModelConfig.readJson(index, true);
        JsonNode weightMap = root == null ? null : root.get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new ModelLoadException(index + ": no 'weight_map' object");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            String fileName = entry.getValue().asText("");
            Path shard = modelDir.resolve(fileName).normalize();
            if (fileName.isEmpty() || !shard.getParent().equals(modelDir.normalize())) {
                throw new ModelLoadException(index + ": tensor '" + entry.getKey() + "' maps to bad file name '"
                        + fileName + "'");
            }
            SafetensorsFile file = files.computeIfAbsent(fileName, name -> SafetensorsFile.open(shard));
            if (!file.contains(entry.getKey())) {
                throw new ModelLoadException(shard + ": missing tensor '" + entry.getKey()
                        + "' that " + index.getFileName() + " places there");
            }
            byTensor.put(entry.getKey(), file);
        }
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
