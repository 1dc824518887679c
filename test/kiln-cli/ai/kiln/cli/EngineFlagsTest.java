package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.EngineOptions;
import ai.kiln.api.KvCacheDType;
import ai.kiln.api.Quantization;
import ai.kiln.server.EngineFlags;
import ai.kiln.testing.Fixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The engine's flags are one mixin: generate, serve, bench and bench serve (its in-process server)
 * declare the same flags with the same defaults, they build the EngineOptions they say, and a bad value is a usage error (exit code 2)
 * with the engine's message, before any model is loaded.
 */
class EngineFlagsTest {

    static final List<String> ENGINE_COMMANDS = List.of("generate", "serve", "bench", "bench serve");
    static final List<String> FLAGS = List.of("--device", "--threads", "--kv-cache-mib", "--gpu-memory-utilization",
            "--max-model-len", "--max-num-seqs", "--max-batched-tokens", "--block-size", "--quantization",
            "--kv-cache-dtype", "--no-prefix-caching", "--verbose");

    static CommandLine command(String name) {
        return new CommandLine(switch (name) {
            case "generate" -> new GenerateCommand();
            case "serve" -> new ai.kiln.server.ServeCommand();
            case "bench" -> new ai.kiln.bench.BenchCommand();
            case "bench serve" -> new ai.kiln.bench.ServeBenchCommand();
            default -> throw new IllegalArgumentException(name);
        });
    }

    /** The flags of {@code command} after parsing {@code args}. */
    static EngineFlags parsed(String command, String... args) {
        CommandLine cli = command(command);
        cli.parseArgs(args);
        return (EngineFlags) cli.getCommandSpec().mixins().get("engineFlags").userObject();
    }

    @Test
    void everyEngineCommandDeclaresTheSameFlagsWithTheSameDefaults() {
        CommandLine generate = command("generate");
        for (String name : ENGINE_COMMANDS) {
            CommandLine cli = command(name);
            for (String flag : FLAGS) {
                OptionSpec option = cli.getCommandSpec().findOption(flag);
                assertTrue(option != null, name + " lacks " + flag);
                OptionSpec reference = generate.getCommandSpec().findOption(flag);
                assertEquals(reference.defaultValue(), option.defaultValue(), name + " " + flag);
                assertEquals(List.of(reference.description()), List.of(option.description()), name + " " + flag);
            }
        }
        // The mixin declares exactly these; each command's own --seed seeds something else.
        List<String> declared = generate.getCommandSpec().mixins().get("engineFlags").options().stream()
                .flatMap(o -> List.of(o.names()).stream()).toList();
        assertEquals(FLAGS, declared);
    }

    @Test
    void defaultsAreTheEnginesOnAutoDevice() {
        assertEquals(EngineOptions.builder().device("auto").build(),
                parsed("generate", "--model", "m", "--prompt", "x").engineOptions());
        assertEquals(EngineOptions.builder().device("auto").build(), parsed("serve", "--model", "m").engineOptions());
        EngineOptions bench = parsed("bench", "--model", "m").engineOptions();
        assertEquals(EngineOptions.builder().device("auto").build(), bench);
        assertEquals(null, bench.maxRunningSeqs(), "left to the engine to choose from the device");
    }

    @Test
    void everyFlagReachesTheOptions() {
        EngineFlags flags = parsed("generate", "--model", "m", "--prompt", "x", "--device", "cpu", "--threads", "3",
                "--kv-cache-mib", "24", "--gpu-memory-utilization", "0.5", "--max-model-len", "300",
                "--max-num-seqs", "7", "--max-batched-tokens", "96", "--block-size", "32", "--quantization", "INT8",
                "--kv-cache-dtype", "fp8", "--no-prefix-caching");
        EngineOptions expected = EngineOptions.builder().device("cpu").threads(3).kvCacheBytes(24L << 20)
                .gpuMemoryUtilization(0.5).maxModelLen(300).maxRunningSeqs(7).maxBatchedTokens(96).blockSize(32)
                .quantization(Quantization.INT8).kvCacheDtype(KvCacheDType.FP8).prefixCaching(false).build();
        assertEquals(expected, flags.engineOptions());
        assertTrue(flags.maxNumSeqsGiven());
        assertEquals(expected.toBuilder().seed(5L).build(), flags.engineOptions(settings -> settings.seed(5L)));
        assertFalse(parsed("serve", "--model", "m").maxNumSeqsGiven());
        assertEquals(Quantization.FP8, parsed("serve", "--model", "m", "--quantization", "fp8").engineOptions()
                .quantization());
        assertEquals(KvCacheDType.FP8, parsed("serve", "--model", "m", "--kv-cache-dtype", "fp8_e4m3").engineOptions()
                .kvCacheDtype());
        assertEquals(KvCacheDType.AUTO, parsed("serve", "--model", "m").engineOptions().kvCacheDtype());
    }

    @Test
    void badValueIsAUsageErrorWithTheEnginesMessage() {
        EngineFlags flags = parsed("serve", "--model", "m", "--max-num-seqs", "0");
        CommandLine.ParameterException e = assertThrows(CommandLine.ParameterException.class, flags::engineOptions);
        assertEquals("maxRunningSeqs must be >= 1, got 0", e.getMessage());
        assertEquals("device must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got gpu", assertThrows(
                CommandLine.ParameterException.class, parsed("bench", "--device", "gpu")::engineOptions).getMessage());
        assertEquals("--kv-cache-mib must be in [1, " + (Long.MAX_VALUE >> 20) + "], got " + (1L << 50),
                assertThrows(CommandLine.ParameterException.class,
                        parsed("generate", "--model", "m", "--kv-cache-mib", Long.toString(1L << 50))::engineOptions)
                        .getMessage());
        assertEquals("--quantization must be \"none\", \"int8\" or \"fp8\", got \"fp4\"",
                assertThrows(CommandLine.ParameterException.class,
                        parsed("serve", "--model", "m", "--quantization", "fp4")::engineOptions).getMessage());
        assertEquals("--kv-cache-dtype: the KV cache dtype must be \"auto\" or \"fp8\" (\"fp8_e4m3\"), got \"int4\"",
                assertThrows(CommandLine.ParameterException.class,
                        parsed("serve", "--model", "m", "--kv-cache-dtype", "int4")::engineOptions).getMessage());
        // What the command adds is checked with the flags.
        assertEquals("maxRunningSeqs must be >= 1, got -1", assertThrows(CommandLine.ParameterException.class,
                () -> parsed("generate", "--model", "m").engineOptions(settings -> settings.maxRunningSeqs(-1)))
                .getMessage());
    }

    @Test
    void everyEngineCommandRefusesABadValueWithExitCodeTwoBeforeLoading() {
        String model = Fixtures.named("llama3-gqa").dir().toString();
        List<List<String>> runs = List.of(
                List.of("generate", "--model", model, "--prompt", "x"),
                List.of("serve", "--model", model, "--port", "0"),
                List.of("bench", "--model", model),
                List.of("bench", "serve", "--model", model, "--vocab-size", "512"));
        for (List<String> run : runs) {
            List<String> args = new ArrayList<>(run);
            args.addAll(List.of("--device", "cpu", "--block-size", "0"));
            StringWriter err = new StringWriter();
            CommandLine cli = new CommandLine(new KilnCli());
            cli.setErr(new PrintWriter(err, true));
            cli.setOut(new PrintWriter(new StringWriter(), true));
            assertEquals(2, cli.execute(args.toArray(String[]::new)), run.get(0) + ": " + err);
            assertTrue(err.toString().contains("blockSize must be in [1, 1024], got 0"), run.get(0) + ": " + err);
        }
    }
}
