package ai.kiln.backend;

import ai.kiln.tensor.DType;
import java.util.ServiceLoader;

/**
 * A backend for an accelerator, found through {@link ServiceLoader} when its module is on the
 * class path (kiln-cuda registers the CUDA backend). The CPU backend is kiln-core's own and needs
 * none.
 */
public interface DeviceBackendProvider {

    /** The device kind the options name: "cuda" for {@code cuda} and {@code cuda:N}. */
    String deviceKind();

    /** Why the backend cannot run here (no device, no driver, libraries missing), or null when it can. */
    String unavailableReason();

    /** Opens device {@code ordinal} with activations in {@code activations}. */
    Backend open(int ordinal, DType activations);

    /** The provider of a device kind on the class path, or null when there is none. */
    static DeviceBackendProvider find(String deviceKind) {
        for (DeviceBackendProvider provider : ServiceLoader.load(DeviceBackendProvider.class,
                DeviceBackendProvider.class.getClassLoader())) {
            if (provider.deviceKind().equals(deviceKind)) {
                return provider;
            }
        }
        return null;
    }
}
