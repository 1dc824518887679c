package ai.kiln.engine;

import ai.kiln.api.EngineException;
import ai.kiln.api.EngineOptions;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The device choice: "auto" falls back to the CPU wherever CUDA cannot run; named devices stay. */
class BackendsTest {

    @Test
    void autoPicksCudaOnlyWhereItCanRun() {
        EngineOptions auto = EngineOptions.builder().device("auto").build();
        String expected = Backends.cudaUnavailableReason() == null ? "cuda" : "cpu";
        EngineOptions resolved = Backends.resolveDevice(auto);
        assertEquals(expected, resolved.device());
        assertEquals(auto.maxRunningSeqs(), resolved.maxRunningSeqs());
    }

    @Test
    void namedDevicesAreKept() {
        EngineOptions cpu = EngineOptions.builder().device("cpu").build();
        assertSame(cpu, Backends.resolveDevice(cpu));
        EngineOptions cuda1 = EngineOptions.builder().device("cuda:1").build();
        assertSame(cuda1, Backends.resolveDevice(cuda1));
        assertThrows(IllegalArgumentException.class, () -> EngineOptions.builder().device("tpu").build());
    }

    @Test
    void withoutTheCudaModuleTheCpuIsPickedAndCudaIsRefusedByName() {
        // kiln-core's own tests run without kiln-cuda on the class path.
        assertEquals("the CUDA backend is not on the class path (add ai.kiln:kiln-cuda)", Backends.cudaUnavailableReason());
        EngineException refused = assertThrows(EngineException.class,
                () -> Backends.open(EngineOptions.builder().device("cuda:0").build(), java.nio.file.Path.of("."), 0));
        assertTrue(refused.getMessage().contains("ai.kiln:kiln-cuda"), refused.getMessage());
    }
}
