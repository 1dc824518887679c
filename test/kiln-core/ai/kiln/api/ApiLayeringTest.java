package ai.kiln.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The API package's layering, read from the sources: ai.kiln.api imports nothing of the engine
 * (only the JDK, itself and the tokenizer module), and the packages below the engine never import
 * the API or the engine back. The engine (ai.kiln.engine) is where the two meet.
 */
class ApiLayeringTest {

    static final Path CORE = Path.of("java/kiln-core/ai/kiln");
    static final Pattern KILN_IMPORT = Pattern.compile("^import (?:static )?(ai\\.kiln\\.[a-z0-9.]*?)\\.[A-Z]",
            Pattern.MULTILINE);
    static final Pattern FULLY_QUALIFIED = Pattern.compile("\\b(ai\\.kiln\\.(?:engine|api))\\.[A-Z]");

    @Test
    void theApiImportsOnlyItselfAndTheTokenizer() throws IOException {
        List<String> offending = new ArrayList<>();
        for (Path source : sources(CORE.resolve("api"))) {
            for (String pkg : kilnReferences(source)) {
                if (!pkg.equals("ai.kiln.api") && !pkg.equals("ai.kiln.tokenizer")) {
                    offending.add(source.getFileName() + " -> " + pkg);
                }
            }
        }
        assertEquals(List.of(), offending);
    }

    @Test
    void theLayersBelowTheEngineDoNotImportTheApiOrTheEngine() throws IOException {
        List<String> offending = new ArrayList<>();
        int checked = 0;
        for (String layer : List.of("backend", "grammar", "kvcache", "model", "sampling", "scheduler", "tensor")) {
            for (Path source : sources(CORE.resolve(layer))) {
                checked++;
                for (String pkg : kilnReferences(source)) {
                    if (pkg.startsWith("ai.kiln.api") || pkg.startsWith("ai.kiln.engine")) {
                        offending.add(source.getFileName() + " -> " + pkg);
                    }
                }
            }
        }
        assertTrue(checked > 30, "the sources were found (" + checked + ")");
        assertEquals(List.of(), offending);
    }

    /** The Kiln packages a source imports or names fully qualified. */
    static List<String> kilnReferences(Path source) throws IOException {
        String text = Files.readString(source);
        List<String> packages = new ArrayList<>();
        for (Pattern p : List.of(KILN_IMPORT, FULLY_QUALIFIED)) {
            Matcher m = p.matcher(text);
            while (m.find()) {
                packages.add(m.group(1));
            }
        }
        return packages;
    }

    static List<Path> sources(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(f -> f.toString().endsWith(".java")).sorted().toList();
        }
    }
}
