package ai.kiln.backend.cuda;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;

/**
 * JavaCPP binding of libkiln_cuda (cuda-kernels/include/kiln_cuda.h). Built only where the CUDA
 * kernels were built; loading it needs the CUDA runtime (libcudart.so.13) on the library path.
 */
@Platform(include = "kiln_cuda.h", link = "kiln_cuda")
public final class KilnCuda {
    static {
        Loader.load();
    }

    private KilnCuda() {
    }

    public static native @Cast("const char*") String kiln_cuda_last_error();

    public static native int kiln_cuda_device_count();
}
