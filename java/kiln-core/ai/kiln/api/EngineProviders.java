package ai.kiln.api;

import java.util.ServiceLoader;

/** Finds the {@link EngineProvider} on the class path once, on first use. */
final class EngineProviders {

    private static volatile EngineProvider found;

    private EngineProviders() {
    }

    /**
     * The first provider {@link ServiceLoader} finds. A failed lookup is not remembered (a class
     * path may be completed later) and says what to add.
     *
     * @throws IllegalStateException when there is none
     */
    static EngineProvider installed() {
        EngineProvider provider = found;
        if (provider == null) {
            provider = ServiceLoader.load(EngineProvider.class, EngineProvider.class.getClassLoader()).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no Kiln engine implementation on the class path"
                            + " (META-INF/services/" + EngineProvider.class.getName() + "): add ai.kiln:kiln-core"));
            found = provider;
        }
        return provider;
    }
}
