package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.kiln.backend.DeviceBackendProvider;
import ai.kiln.testing.Fixtures;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --device auto} where the GPU cannot be used: one short line on stderr saying the CPU is
 * used, and why the GPU was passed over only under {@code --verbose}.
 */
class DeviceChoiceMessageTest {

    @TempDir
    Path dir;

    @BeforeAll
    static void onlyWithoutAUsableGpu() {
        DeviceBackendProvider cuda = DeviceBackendProvider.find("cuda");
        assumeTrue(cuda != null && cuda.unavailableReason() != null, "a GPU is usable here: auto picks it");
    }

    record Run(int exitCode, String out, List<String> errLines) {
    }

    Run generate(String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("generate", "--model", Fixtures.named("llama3-gqa").dir().toString(),
                "--prompt", "hi", "--max-tokens", "2", "--temperature", "0", "--threads", "1", "--kv-cache-mib", "16"));
        args.addAll(List.of(extra));
        Path out = dir.resolve("out.txt");
        Path err = dir.resolve("err.txt");
        Process process = KilnProcess.of(args.toArray(String[]::new)).redirectOutput(out.toFile())
                .redirectError(err.toFile()).start();
        assertTrue(process.waitFor(120, TimeUnit.SECONDS), "kiln generate did not end");
        return new Run(process.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                Files.readAllLines(err, StandardCharsets.UTF_8));
    }

    @Test
    void autoOnTheCpuSaysSoInOneShortLine() throws Exception {
        Run run = generate();
        assertEquals(0, run.exitCode(), String.join("\n", run.errLines()));
        assertEquals(List.of("kiln: no GPU found: using the CPU backend"), run.errLines());
        assertTrue(!run.out().isBlank(), "no text was generated");
    }

    @Test
    void verboseAddsWhyTheGpuWasPassedOver() throws Exception {
        Run run = generate("--verbose");
        assertEquals(0, run.exitCode(), String.join("\n", run.errLines()));
        assertEquals("kiln: no GPU found: using the CPU backend", run.errLines().get(0), run.errLines().toString());
        String prefix = "kiln: the CUDA backend cannot run here: ";
        assertTrue(run.errLines().stream().anyMatch(l -> l.startsWith(prefix) && l.length() > prefix.length()),
                run.errLines().toString());
    }
}
