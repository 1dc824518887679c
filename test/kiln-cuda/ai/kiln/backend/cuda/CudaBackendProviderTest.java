package ai.kiln.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import ai.kiln.backend.DeviceBackendProvider;
import org.junit.jupiter.api.Test;

/** kiln-cuda on the class path makes the CUDA backend findable, and says the same as CudaBackend about running here. */
class CudaBackendProviderTest {

    @Test
    void theCudaBackendIsFoundThroughTheServiceLoader() {
        DeviceBackendProvider cuda = DeviceBackendProvider.find("cuda");
        assertNotNull(cuda, "META-INF/services registers the CUDA backend");
        assertEquals(CudaBackendProvider.class, cuda.getClass());
        // NOTE: the reasons' wording differs from the first call to later ones (a class that failed
        // to initialize says so differently), so what is compared is whether CUDA can run.
        assertEquals(CudaBackend.unavailableReason() == null, cuda.unavailableReason() == null);
    }
}
