package ai.kiln.backend.cuda;

import ai.kiln.backend.Backend;
import ai.kiln.backend.DeviceBackendProvider;
import ai.kiln.tensor.DType;

/** Registered in META-INF/services: makes {@code --device cuda} (and {@code auto} on a GPU) open a {@link CudaBackend}. */
public final class CudaBackendProvider implements DeviceBackendProvider {

    @Override
    public String deviceKind() {
        return "cuda";
    }

    @Override
    public String unavailableReason() {
        return CudaBackend.unavailableReason();
    }

    @Override
    public Backend open(int ordinal, DType activations) {
        return new CudaBackend(ordinal, activations);
    }
}
