package ai.kiln.fuzz;

import ai.kiln.model.ModelLoadException;
import ai.kiln.model.SafetensorsFile;
import ai.kiln.model.WeightFiles;
import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.lifecycle.AddLifecycleHook;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The safetensors reader on headers of the fixture models after bit flips, byte edits, cuts,
 * insertions, tree edits and changes of the 8-byte length prefix, and on headers made up from
 * scratch; and the shard index (model.safetensors.index.json) of the sharded fixture after tree
 * and byte edits. Every file must open or be refused with a {@link ModelLoadException}.
 */
@AddLifecycleHook(FuzzBudget.class)
class SafetensorsHeaderFuzzTest {

    static final String TARGET = "safetensors";
    static final String INDEX_TARGET = "weights-index";
    private static final List<Class<? extends Throwable>> DECLARED = List.of(ModelLoadException.class);
    private static final String[] DTYPES = {"F32", "F16", "BF16", "I32", "I64", "F64", "U8", "", "f32"};

    /** A fixture's header JSON and the length of its data section. */
    record Seed(byte[] header, long dataBytes) {
    }

    private static final List<Seed> SEEDS = seeds();
    private static final Path SCRATCH = Fuzzing.scratchDirectory(TARGET);
    private static final Path SHARDED = shardedCopy();
    private static final JsonNode INDEX = Mutations.parse(Fuzzing.read(SHARDED.resolve("model.safetensors.index.json")));

    private static List<Seed> seeds() {
        List<Seed> seeds = new ArrayList<>();
        try (Stream<Path> files = Files.walk(Fixtures.ROOT)) {
            for (Path file : files.filter(f -> f.toString().endsWith(".safetensors")).sorted().toList()) {
                byte[] bytes = Files.readAllBytes(file);
                long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
                seeds.add(new Seed(Arrays.copyOfRange(bytes, 8, 8 + (int) headerLength),
                        bytes.length - 8 - headerLength));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return seeds;
    }

    /** The sharded fixture copied once, so that each try rewrites only its index. */
    private static Path shardedCopy() {
        Path copy = SCRATCH.resolve("sharded");
        try (Stream<Path> files = Files.list(Fixtures.ROOT.resolve("qwen3-qknorm-sharded"))) {
            Files.createDirectories(copy);
            for (Path file : files.toList()) {
                Files.copy(file, copy.resolve(file.getFileName()));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return copy;
    }

    @Property
    void mutatedFixtureHeaderOpensOrIsRefused(@ForAll long seed, @ForAll @IntRange(min = 1, max = 8) int edits) {
        Random random = new Random(seed);
        Seed fixture = SEEDS.get(random.nextInt(SEEDS.size()));
        byte[] header = fixture.header();
        long dataBytes = fixture.dataBytes();
        long prefix;
        switch (random.nextInt(5)) {
            case 0 -> {
                // The prefix still gives the old length: the reader must notice it no longer matches.
                prefix = header.length;
                header = Mutations.mutateBytes(header, edits, header.length * 2, random);
            }
            case 1 -> {
                header = Mutations.mutateBytes(header, edits, header.length * 2, random);
                prefix = header.length;
            }
            case 2 -> {
                header = Mutations.mutateJson(Mutations.parse(header), edits, random);
                prefix = header.length;
            }
            case 3 -> {
                header = padded(header, random);
                prefix = header.length;
            }
            default -> prefix = oddPrefix(header.length, dataBytes, random);
        }
        byte[] file = file(prefix, header, dataBytes);
        if (random.nextInt(8) == 0) {
            file = Arrays.copyOf(file, random.nextInt(file.length + 1));
        }
        checkOpen(file);
    }

    @Property
    void generatedHeaderOpensOrIsRefused(@ForAll long seed) {
        Random random = new Random(seed);
        ObjectNode header = JsonNodeFactory.instance.objectNode();
        long offset = 0;
        for (int i = random.nextInt(6); i >= 0; i--) {
            ObjectNode entry = header.putObject(random.nextInt(10) == 0 ? "__metadata__" : "t" + random.nextInt(4));
            entry.put("dtype", DTYPES[random.nextInt(DTYPES.length)]);
            ArrayNode shape = entry.putArray("shape");
            long numel = 1;
            for (int d = random.nextInt(4); d > 0; d--) {
                long dim = random.nextInt(10) == 0 ? Mutations.extremeNumber(random).asLong() : random.nextInt(9);
                shape.add(dim);
                numel *= dim;
            }
            long length = random.nextInt(4) == 0 ? random.nextInt(64) : numel * 4;
            long begin = random.nextInt(6) == 0 ? offset - random.nextInt(8) : offset;
            ArrayNode offsets = entry.putArray("data_offsets");
            offsets.add(begin);
            offsets.add(begin + length);
            if (random.nextInt(8) == 0) {
                entry.set(random.nextBoolean() ? "shape" : "data_offsets", Mutations.randomValue(random, 2));
            }
            offset = begin + length;
        }
        byte[] json = Mutations.write(header);
        long dataBytes = Math.max(0, Math.min(1 << 16, offset + random.nextInt(3) - 1));
        checkOpen(file(json.length, json, dataBytes));
    }

    @Property
    void mutatedShardIndexOpensOrIsRefused(@ForAll long seed, @ForAll @IntRange(min = 1, max = 4) int edits) {
        Random random = new Random(seed);
        byte[] index = random.nextInt(4) == 0
                ? Mutations.mutateBytes(Mutations.write(INDEX), edits, 1 << 16, random)
                : Mutations.mutateJson(INDEX, edits, random);
        checkIndex(index);
    }

    @TestFactory
    Stream<DynamicTest> pastFindingsStillOpenOrAreRefused() {
        return Stream.concat(
                Fuzzing.corpus(TARGET).map(file -> DynamicTest.dynamicTest(file.getFileName().toString(),
                        () -> checkOpen(Fuzzing.read(file)))),
                Fuzzing.corpus(INDEX_TARGET).map(file -> DynamicTest.dynamicTest(file.getFileName().toString(),
                        () -> checkIndex(Fuzzing.read(file)))));
    }

    private static void checkOpen(byte[] file) {
        Path path = SCRATCH.resolve("model.safetensors");
        write(path, file);
        Fuzzing.check(TARGET, file, () -> {
            try (SafetensorsFile weights = SafetensorsFile.open(path)) {
                for (String name : weights.entries().keySet()) {
                    weights.tensor(name);
                }
            }
            return null;
        }, Fuzzing.declared(DECLARED));
    }

    private static void checkIndex(byte[] index) {
        write(SHARDED.resolve("model.safetensors.index.json"), index);
        Fuzzing.check(INDEX_TARGET, index, () -> {
            try (WeightFiles weights = WeightFiles.open(SHARDED)) {
                for (String name : weights.tensorNames()) {
                    weights.tensor(name);
                }
                return weights.totalTensorBytes();
            }
        }, Fuzzing.declared(DECLARED));
    }

    /** Spaces (allowed) or other bytes (refused) after the JSON object, inside the declared length. */
    private static byte[] padded(byte[] header, Random random) {
        byte[] pad = new byte[1 + random.nextInt(16)];
        Arrays.fill(pad, (byte) ' ');
        if (random.nextBoolean()) {
            pad[random.nextInt(pad.length)] = (byte) "\0\n\t}x{".charAt(random.nextInt(6));
        }
        return Mutations.splice(header, header.length, header.length, pad);
    }

    /** A length prefix near the real one, at the edges of the file, or far outside it. */
    private static long oddPrefix(long headerLength, long dataBytes, Random random) {
        return switch (random.nextInt(9)) {
            case 0 -> 0;
            case 1 -> 1;
            case 2 -> 2;
            case 3 -> headerLength - 1 - random.nextInt(8);
            case 4 -> headerLength + 1 + random.nextInt(8);
            case 5 -> headerLength + dataBytes;
            case 6 -> headerLength + dataBytes + 1;
            case 7 -> -1 - random.nextInt(1 << 16);
            default -> random.nextLong();
        };
    }

    private static byte[] file(long prefix, byte[] header, long dataBytes) {
        ByteBuffer file = ByteBuffer.allocate(Math.toIntExact(8 + header.length + dataBytes)).order(ByteOrder.LITTLE_ENDIAN);
        file.putLong(prefix).put(header);
        return file.array();
    }

    private static void write(Path path, byte[] bytes) {
        try {
            Files.write(path, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
