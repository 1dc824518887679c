package ai.kiln.engine;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineException;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.EngineProvider;
import ai.kiln.hub.HubException;
import ai.kiln.hub.LocatedModel;
import ai.kiln.hub.ModelLocator;
import ai.kiln.tokenizer.Tokenizer;
import java.nio.file.Path;

/** Registered in META-INF/services: {@link Engine#create} builds a {@link LocalEngine}. */
public final class LocalEngineProvider implements EngineProvider {

    @Override
    public Engine create(Path modelDir, EngineOptions options) {
        return LocalEngine.create(modelDir, options);
    }

    @Override
    public Engine create(String model, String revision, EngineOptions options) {
        LocatedModel located;
        try {
            located = ModelLocator.fromEnvironment().locate(model, revision);
        } catch (HubException e) {
            throw new EngineException(e.getMessage(), e);
        }
        return LocalEngine.create(located, options);
    }

    @Override
    public Engine create(Path modelDir, Tokenizer tokenizer, EngineOptions options) {
        return LocalEngine.create(modelDir, tokenizer, options);
    }
}
