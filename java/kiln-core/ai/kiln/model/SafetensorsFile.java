package ai.kiln.model;

import ai.kiln.backend.cpu.KilnCpu;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A memory-mapped .safetensors file: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}), then the
 * data. The whole header is validated when the file is opened (lengths, dtypes, shapes, offsets
 * inside the file and not overlapping), so that no tensor view handed out can reach past the
 * mapping.
 */
public final class SafetensorsFile implements AutoCloseable {

    /** Headers beyond this are refused (the format's own limit is 100 MB). */
    private static final long MAX_HEADER_BYTES = 100L << 20;

    /** The format disallows duplicate keys: a tensor named twice, or "dtype" twice in an entry. */
    private static final ObjectMapper HEADER_JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    /** One tensor's entry: where its bytes are relative to the data section. */
    public record Entry(String name, DType dtype, long[] shape, long begin, long end) {
    }

    private final Path path;
    private final long address;
    private final long size;
    private final long dataStart;
    private final Map<String, Entry> entries;
    private boolean closed;

    private SafetensorsFile(Path path, long address, long size, long dataStart, Map<String, Entry> entries) {
        this.path = path;
        this.address = address;
        this.size = size;
        this.dataStart = dataStart;
        this.entries = entries;
    }

    /** Maps and validates a file; any problem is a {@link ModelLoadException} naming it. */
    public static SafetensorsFile open(Path path) {
        if (!Files.isRegularFile(path)) {
            throw new ModelLoadException("missing weights file " + path);
        }
        long[] sizeOut = new long[1];
        long address = KilnCpu.kiln_map_file(path.toString(), sizeOut);
        if (address == 0) {
            throw new ModelLoadException(KilnCpu.kiln_last_error());
        }
        long size = sizeOut[0];
        try {
            if (size < 8) {
                throw new ModelLoadException(path + ": truncated safetensors file (" + size + " bytes, no header)");
            }
            byte[] lengthBytes = new byte[8];
            KilnCpu.kiln_cpu_copy(lengthBytes, address, 8);
            long headerLength = ByteBuffer.wrap(lengthBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
            if (headerLength < 2 || headerLength > MAX_HEADER_BYTES || headerLength > size - 8) {
                throw new ModelLoadException(path + ": header length " + Long.toUnsignedString(headerLength)
                        + " does not fit in the file of " + size + " bytes");
            }
            byte[] header = new byte[(int) headerLength];
            KilnCpu.kiln_cpu_copy(header, address + 8, headerLength);
            long dataStart = 8 + headerLength;
            Map<String, Entry> entries = parseHeader(path, header, size - dataStart);
            return new SafetensorsFile(path, address, size, dataStart, entries);
        } catch (RuntimeException e) {
            KilnCpu.kiln_unmap_file(address, size);
            throw e;
        }
    }

    /**
     * Reads the header's JSON object. As the format specifies, it must start with '{' and may be
     * padded after the object with spaces (0x20) only; a key given twice is refused, not resolved
     * by taking one of them.
     */
    private static Map<String, Entry> parseHeader(Path path, byte[] header, long dataBytes) {
        if (header[0] != '{') {
            throw new ModelLoadException(path + ": header does not start with '{'");
        }
        Map<String, Entry> entries = new LinkedHashMap<>();
        long objectEnd;
        try (JsonParser parser = HEADER_JSON.createParser(header)) {
            parser.nextToken();
            for (JsonToken token = parser.nextToken(); token != JsonToken.END_OBJECT; token = parser.nextToken()) {
                if (token == null) {
                    throw new ModelLoadException(path + ": header is not valid JSON: it ends inside the object");
                }
                String name = parser.currentName();
                parser.nextToken();
                JsonNode value = parser.readValueAsTree();
                if (!name.equals("__metadata__")) {
                    entries.put(name, parseEntry(path, name, value, dataBytes));
                }
            }
            objectEnd = parser.currentLocation().getByteOffset();
        } catch (JsonProcessingException e) {
            if (e.getProcessor() instanceof JsonParser parser && parser.getParsingContext().getParent() != null
                    && parser.getParsingContext().getParent().inRoot()
                    && e.getOriginalMessage().startsWith("Duplicate field")) {
                throw new ModelLoadException(path + ": header names tensor '" + parser.getParsingContext().getCurrentName()
                        + "' twice");
            }
            throw new ModelLoadException(path + ": header is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new ModelLoadException(path + ": cannot read the header: " + e.getMessage(), e);
        }
        for (long i = objectEnd; i < header.length; i++) {
            if (header[(int) i] != ' ') {
                throw new ModelLoadException(path + ": unexpected data after the header's JSON object at header byte "
                        + i + " of " + header.length + " (only spaces may pad it)");
            }
        }
        // Tensors must not overlap: sort by offset and compare neighbours.
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.sort(Comparator.comparingLong(Entry::begin));
        for (int i = 1; i < sorted.size(); i++) {
            Entry previous = sorted.get(i - 1);
            Entry current = sorted.get(i);
            if (current.begin() < previous.end()) {
                throw new ModelLoadException(path + ": tensors '" + previous.name() + "' and '" + current.name()
                        + "' overlap");
            }
        }
        return Collections.unmodifiableMap(entries);
    }

    private static Entry parseEntry(Path path, String name, JsonNode node, long dataBytes) {
        String where = path + ": tensor '" + name + "'";
        if (node == null || !node.isObject()) {
            throw new ModelLoadException(where + ": entry is not an object");
        }
        String dtypeName = node.path("dtype").asText("");
        DType dtype = DType.fromSafetensors(dtypeName);
        if (dtype == null) {
            throw new ModelLoadException(where + ": unsupported dtype '" + dtypeName + "' (supported: F32, F16, BF16, F8_E4M3, I32, I64, I8)");
        }
        JsonNode shapeNode = node.get("shape");
        if (shapeNode == null || !shapeNode.isArray()) {
            throw new ModelLoadException(where + ": missing shape");
        }
        long[] shape = new long[Math.max(1, shapeNode.size())];
        shape[0] = 1; // a scalar is stored as a one-element tensor
        long numel = 1;
        // NOTE: the product of the non-zero sizes too: a zero elsewhere makes the tensor empty, but a
        // tensor view multiplies the sizes of its rows, which must not overflow either.
        long nonZeroProduct = 1;
        for (int i = 0; i < shapeNode.size(); i++) {
            JsonNode dim = shapeNode.get(i);
            if (!dim.canConvertToLong() || !dim.isIntegralNumber() || dim.asLong() < 0) {
                throw new ModelLoadException(where + ": bad shape " + shapeNode);
            }
            shape[i] = dim.asLong();
            try {
                numel = Math.multiplyExact(numel, shape[i]);
                nonZeroProduct = Math.multiplyExact(nonZeroProduct, Math.max(1, shape[i]));
            } catch (ArithmeticException e) {
                throw new ModelLoadException(where + ": shape " + shapeNode + " overflows");
            }
        }
        JsonNode offsets = node.get("data_offsets");
        if (offsets == null || !offsets.isArray() || offsets.size() != 2 || !offsets.get(0).isIntegralNumber()
                || !offsets.get(1).isIntegralNumber()) {
            throw new ModelLoadException(where + ": data_offsets must be [begin, end]");
        }
        long begin = offsets.get(0).asLong();
        long end = offsets.get(1).asLong();
        if (begin < 0 || end < begin || end > dataBytes) {
            throw new ModelLoadException(where + ": data_offsets [" + begin + ", " + end
                    + "] are outside the data section of " + dataBytes + " bytes (truncated file?)");
        }
        long expected;
        try {
            expected = Math.multiplyExact(numel, (long) dtype.bytes);
        } catch (ArithmeticException e) {
            throw new ModelLoadException(where + ": shape " + shapeNode + " overflows");
        }
        if (end - begin != expected) {
            throw new ModelLoadException(where + ": " + (end - begin) + " bytes of data but " + dtypeName + " "
                    + shapeNode + " needs " + expected);
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    public Path path() {
        return path;
    }

    public Map<String, Entry> entries() {
        return entries;
    }

    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    /** A view of a tensor's bytes inside the mapping; valid until {@link #close}. */
    public Tensor tensor(String name) {
        ensureOpen();
        Entry entry = entries.get(name);
        if (entry == null) {
            throw new ModelLoadException(path + ": missing tensor '" + name + "'");
        }
        return Tensor.of(address + dataStart + entry.begin(), entry.dtype(), entry.shape());
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            KilnCpu.kiln_unmap_file(address, size);
        }
    }
}
