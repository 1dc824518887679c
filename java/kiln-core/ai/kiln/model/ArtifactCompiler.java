package ai.kiln.model;

import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.backend.cpu.KilnCpu;
import ai.kiln.hub.ModelManifest;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Writes a {@link ModelArtifact} (`kiln compile`): loads the source model on the CPU in the
 * target's layout (the same loading, fusion, checks and quantisation as an engine's load, with
 * float weights kept as the target keeps them), then writes the tensors into safetensors files of
 * at most {@link #maxFileBytes} bytes with each tensor's data 4096-byte aligned (the gaps are
 * zero-filled "__kiln_padding" tensors, so the files stay valid safetensors), the index, the
 * source's other files, the artifact manifest and a kiln-manifest.json (so that a file server or
 * `kiln publish` serves the artifact). The directory is written beside the destination and moved
 * into place whole.
 */
public final class ArtifactCompiler {

    /** Alignment of every tensor's data within its file (direct transfers read whole pages). */
    static final int ALIGNMENT = 4096;
    static final String PADDING_PREFIX = "__kiln_padding.";
    private static final long COPY_CHUNK = 16L << 20;

    private final long maxFileBytes;
    private final PrintWriter log;

    /** @param maxFileBytes the largest weights file (tensors larger than it get a file each); > 0 */
    public ArtifactCompiler(long maxFileBytes, PrintWriter log) {
        if (maxFileBytes <= 0) {
            throw new IllegalArgumentException("maxFileBytes must be > 0, got " + maxFileBytes);
        }
        this.maxFileBytes = maxFileBytes;
        this.log = log;
    }

    /** Files of at most 4 GiB. */
    public ArtifactCompiler(PrintWriter log) {
        this(4L << 30, log);
    }

    /**
     * Compiles the Hugging Face model directory {@code source} for {@code target} into {@code out}
     * (which must not exist, or be an empty directory).
     *
     * @param sourceName what the source was called (a path, a Hub id, a URL), for the manifest
     * @param revision   the source's revision as asked for (a Hub branch, tag or commit), or null
     */
    public void compile(Path source, String sourceName, String revision, ArtifactTarget target,
            WeightQuantization quantization, Path out) throws IOException {
        if (!target.supports(quantization)) {
            throw new ModelLoadException("quantization " + quantization.name().toLowerCase(Locale.ROOT)
                    + " does not run on " + target + (quantization == WeightQuantization.FP8
                            ? " (FP8 weights need compute capability 9.0: cuda-sm90, or cpu)"
                            : " (int8 weights are a CPU-backend format)"));
        }
        if (ModelArtifact.isArtifact(source)) {
            throw new ModelLoadException(source + " is a compiled artifact already; compile its source model");
        }
        if (Files.exists(out) && !(Files.isDirectory(out) && isEmpty(out))) {
            throw new ModelLoadException(out + " exists; give a new directory (or an empty one)");
        }
        ModelConfig config = ModelConfig.load(source);
        if (config.fp8() != null && !target.supports(WeightQuantization.FP8)) {
            throw new ModelLoadException(source + " is an FP8 checkpoint (quantization_config.quant_method "
                    + config.fp8().format() + "), whose weights do not run on " + target
                    + " (FP8 weights need compute capability 9.0: cuda-sm90, or cpu)");
        }
        Path parent = out.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path partial = parent.resolve(out.getFileName() + ".partial");
        deleteTree(partial);
        Files.createDirectories(partial);
        try {
            ObjectNode sourceNode = describeSource(source, sourceName, revision);
            List<ModelManifest.Entry> files = new ArrayList<>();
            try (CpuBackend layout = new CpuBackend(0, Long.MAX_VALUE / 4, target.floatWeights);
                    WeightFiles weightFiles = WeightFiles.open(source);
                    ModelWeights weights = ModelWeights.load(config, weightFiles, layout, quantization)) {
                files.addAll(writeWeights(weights.namedTensors(), partial));
                files.addAll(copyOtherFiles(source, partial));
                ObjectNode manifest = ModelArtifact.manifestJson(target, quantization, weights.lmHeadTied(),
                        weights.inputQuantizations(), sourceNode, files);
                Path manifestPath = partial.resolve(ModelArtifact.MANIFEST);
                Files.write(manifestPath, ModelArtifact.json().writerWithDefaultPrettyPrinter().writeValueAsBytes(manifest));
                List<ModelManifest.Entry> served = new ArrayList<>(files);
                served.add(new ModelManifest.Entry(ModelArtifact.MANIFEST, Files.size(manifestPath),
                        ModelManifest.sha256Of(manifestPath)));
                new ModelManifest(served).write(partial);
            }
            // NOTE: on disk before the move, so that a crash cannot leave an artifact of the right sizes
            // whose data was lost.
            try (Stream<Path> written = Files.list(partial)) {
                for (Path file : written.toList()) {
                    force(file);
                }
            }
            force(partial);
            if (Files.isDirectory(out)) {
                Files.delete(out);
            }
            Files.move(partial, out, StandardCopyOption.ATOMIC_MOVE);
            force(parent);
            log.printf("compiled %s for %s (quantization %s) into %s: %d files%n", sourceName, target,
                    quantization.name().toLowerCase(Locale.ROOT), out, files.size() + 2);
            log.flush();
        } catch (IOException | RuntimeException e) {
            deleteTree(partial);
            throw e;
        }
    }

    /** A tensor's place in a weights file: its name, and its data's offset within the data section. */
    private record Placed(String name, Tensor tensor, long begin) {
    }

    /** The tensors into files of at most maxFileBytes, each tensor's data aligned; the index beside them. */
    private List<ModelManifest.Entry> writeWeights(List<ModelWeights.NamedTensor> tensors, Path dir)
            throws IOException {
        List<List<ModelWeights.NamedTensor>> groups = new ArrayList<>();
        List<ModelWeights.NamedTensor> current = new ArrayList<>();
        long currentBytes = 0;
        for (ModelWeights.NamedTensor named : tensors) {
            long bytes = alignUp(named.tensor().numel() * named.tensor().dtype().bytes);
            if (!current.isEmpty() && currentBytes + bytes > maxFileBytes) {
                groups.add(current);
                current = new ArrayList<>();
                currentBytes = 0;
            }
            current.add(named);
            currentBytes += bytes;
        }
        groups.add(current);
        List<ModelManifest.Entry> entries = new ArrayList<>();
        Map<String, String> weightMap = new LinkedHashMap<>();
        long total = 0;
        for (int i = 0; i < groups.size(); i++) {
            String fileName = String.format("model-%05d-of-%05d.safetensors", i + 1, groups.size());
            List<Placed> placed = new ArrayList<>();
            long offset = 0;
            for (ModelWeights.NamedTensor named : groups.get(i)) {
                placed.add(new Placed(named.name(), named.tensor(), offset));
                offset = alignUp(offset + named.tensor().numel() * named.tensor().dtype().bytes);
            }
            Path path = dir.resolve(fileName);
            entries.add(writeSafetensors(path, placed, offset, weightMap, fileName));
            total += offset;
        }
        ObjectNode index = ModelArtifact.json().createObjectNode();
        index.putObject("metadata").put("total_size", total);
        ObjectNode map = index.putObject("weight_map");
        weightMap.forEach(map::put);
        Path indexPath = dir.resolve("model.safetensors.index.json");
        Files.write(indexPath, ModelArtifact.json().writerWithDefaultPrettyPrinter().writeValueAsBytes(index));
        entries.add(new ModelManifest.Entry(indexPath.getFileName().toString(), Files.size(indexPath),
                ModelManifest.sha256Of(indexPath)));
        return entries;
    }

    /**
     * One safetensors file: the header (padded with spaces so that the data starts on an aligned
     * offset), then each tensor's bytes, the gaps up to the next aligned offset as padding tensors.
     */
    private ModelManifest.Entry writeSafetensors(Path path, List<Placed> placed, long dataBytes,
            Map<String, String> weightMap, String fileName) throws IOException {
        ObjectMapper json = ModelArtifact.json();
        ObjectNode header = json.createObjectNode();
        header.putObject("__metadata__").put("format", "pt").put("producer", "kiln compile");
        int pads = 0;
        for (int i = 0; i < placed.size(); i++) {
            Placed p = placed.get(i);
            long end = p.begin() + p.tensor().numel() * p.tensor().dtype().bytes;
            ObjectNode entry = header.putObject(p.name());
            entry.put("dtype", p.tensor().dtype().safetensorsName);
            ArrayNode shape = entry.putArray("shape");
            for (long d : p.tensor().shape()) {
                shape.add(d);
            }
            entry.putArray("data_offsets").add(p.begin()).add(end);
            weightMap.put(p.name(), fileName);
            long next = i + 1 < placed.size() ? placed.get(i + 1).begin() : dataBytes;
            if (next > end) {
                String pad = PADDING_PREFIX + fileName + "." + pads++;
                ObjectNode padEntry = header.putObject(pad);
                padEntry.put("dtype", DType.I8.safetensorsName);
                padEntry.putArray("shape").add(next - end);
                padEntry.putArray("data_offsets").add(end).add(next);
                weightMap.put(pad, fileName);
            }
        }
        byte[] headerJson = json.writeValueAsBytes(header);
        int padded = (int) (alignUp(8 + headerJson.length) - 8);
        byte[] headerBytes = new byte[padded];
        java.util.Arrays.fill(headerBytes, (byte) ' ');
        System.arraycopy(headerJson, 0, headerBytes, 0, headerJson.length);
        MessageDigest digest = ModelManifest.sha256Digest();
        try (OutputStream out = new DigestOutputStream(Files.newOutputStream(path), digest)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
            out.write(headerBytes);
            byte[] chunk = new byte[(int) Math.min(COPY_CHUNK, Math.max(dataBytes, 1))];
            long written = 0;
            for (Placed p : placed) {
                written += zeros(out, p.begin() - written, chunk);
                long bytes = p.tensor().numel() * p.tensor().dtype().bytes;
                for (long done = 0; done < bytes; ) {
                    int n = (int) Math.min(chunk.length, bytes - done);
                    KilnCpu.kiln_cpu_copy(chunk, p.tensor().address() + done, n);
                    out.write(chunk, 0, n);
                    done += n;
                }
                written += bytes;
            }
            zeros(out, dataBytes - written, chunk);
        }
        return new ModelManifest.Entry(fileName, Files.size(path), HexFormat.of().formatHex(digest.digest()));
    }

    private static long zeros(OutputStream out, long count, byte[] chunk) throws IOException {
        java.util.Arrays.fill(chunk, (byte) 0);
        for (long left = count; left > 0; ) {
            int n = (int) Math.min(chunk.length, left);
            out.write(chunk, 0, n);
            left -= n;
        }
        return count;
    }

    /** The source's files other than its weights (config, tokenizer, chat template, ...), copied. */
    private static List<ModelManifest.Entry> copyOtherFiles(Path source, Path dir) throws IOException {
        List<ModelManifest.Entry> entries = new ArrayList<>();
        for (Path file : sourceFiles(source)) {
            String name = file.getFileName().toString();
            if (name.endsWith(".safetensors") || name.equals("model.safetensors.index.json")) {
                continue;
            }
            Path copy = dir.resolve(name);
            Files.copy(file, copy);
            entries.add(new ModelManifest.Entry(name, Files.size(copy), ModelManifest.sha256Of(copy)));
        }
        return entries;
    }

    /** The source as the manifest records it: its name, revision and every file's size and sha256. */
    private static ObjectNode describeSource(Path source, String name, String revision) throws IOException {
        ObjectNode node = ModelArtifact.json().createObjectNode();
        node.put("model", name);
        if (revision != null) {
            node.put("revision", revision);
        } else {
            node.putNull("revision");
        }
        ArrayNode files = node.putArray("files");
        for (Path file : sourceFiles(source)) {
            files.addObject().put("path", file.getFileName().toString()).put("size", Files.size(file))
                    .put("sha256", ModelManifest.sha256Of(file));
        }
        return node;
    }

    /** The source directory's files a model is loaded from (ModelManifest.isModelFile), by name. */
    private static List<Path> sourceFiles(Path source) throws IOException {
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(source)) {
            for (Path file : entries) {
                if (Files.isRegularFile(file) && ModelManifest.isModelFile(file.getFileName().toString())) {
                    files.add(file);
                }
            }
        }
        files.sort(Comparator.comparing(p -> p.getFileName().toString()));
        return files;
    }

    /** Flushes a file's (or a directory's) data to the device. */
    private static void force(Path path) throws IOException {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }

    private static long alignUp(long value) {
        return (value + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.delete(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        }
    }
}
