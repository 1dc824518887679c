package ai.kiln.api;

import ai.kiln.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.ServiceLoader;

/**
 * What {@link Engine#create} finds through {@link ServiceLoader}: the implementation of the
 * engine (kiln-core registers its own). The API itself holds no implementation, so that it
 * depends on nothing of the engine's internals.
 */
public interface EngineProvider {

    /** See {@link Engine#create(Path, EngineOptions)}. */
    Engine create(Path modelDir, EngineOptions options);

    /** See {@link Engine#create(String, String, EngineOptions)}. */
    Engine create(String model, String revision, EngineOptions options);

    /** See {@link Engine#create(Path, Tokenizer, EngineOptions)}. */
    Engine create(Path modelDir, Tokenizer tokenizer, EngineOptions options);
}
