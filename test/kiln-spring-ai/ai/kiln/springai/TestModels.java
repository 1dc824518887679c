package ai.kiln.springai;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;

/**
 * The bundled fixture models, found as class-path resources (test/resources is on the test class
 * path), so that tests do not depend on the working directory.
 */
public final class TestModels {

    private TestModels() {
    }

    /**
     * A random-weight Llama 3 (2 layers, 512-token vocabulary and context) with a real tokenizer
     * and chat template: its replies are gibberish, but greedy ones are deterministic.
     */
    public static Path llama3() {
        return fixture("llama3-gqa");
    }

    /** The directory of fixtures/{@code name}. */
    public static Path fixture(String name) {
        URL config = TestModels.class.getClassLoader().getResource("fixtures/" + name + "/config.json");
        if (config == null) {
            throw new IllegalStateException("fixtures/" + name + "/config.json is not on the test class path");
        }
        try {
            return Path.of(config.toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
