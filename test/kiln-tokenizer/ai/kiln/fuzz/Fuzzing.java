package ai.kiln.fuzz;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The contract every fuzz target is held to, and the budget they share. One try hands an input to
 * a parser; the parser must return a result or throw one of the exceptions it declares, with a
 * message, within {@link #TRY_TIMEOUT_MILLIS}. Anything else (an undeclared exception, an Error such
 * as OutOfMemoryError or StackOverflowError, a hang) fails the try, and the input is kept under
 * {@link #FINDINGS} so that it can be added to the corpus under test/resources/fuzz/.
 *
 * <p>The budget is set in one place: {@code -Dkiln.fuzz.tries} (tries per property; the default
 * runs the suite in about 20 s of test time on two cores, within CI's minute) and
 * {@code -Dkiln.fuzz.seed} (fixed by default, so that a failure in CI reproduces locally; "random"
 * for a fresh one). A longer local run:
 * {@code mvn test -Dtest='ai.kiln.fuzz.**,ai.kiln.server.RequestParserFuzzTest' -Dkiln.fuzz.tries=100000 -Dkiln.fuzz.seed=random}.
 */
public final class Fuzzing {

    public static final int TRIES = Integer.getInteger("kiln.fuzz.tries", 3000);
    public static final String SEED = System.getProperty("kiln.fuzz.seed", "1212");
    public static final long TRY_TIMEOUT_MILLIS = Long.getLong("kiln.fuzz.tryTimeoutMillis", 2000);

    /** Where a failing input is written (its name: the target and a hash of its bytes). */
    public static final Path FINDINGS = Path.of(System.getProperty("java.io.tmpdir"), "kiln-fuzz-findings");

    /** The corpus of past findings, one folder per target. */
    public static final Path CORPUS = Path.of("test/resources/fuzz");

    /**
     * NOTE: a new daemon thread per hung try: a parser that never returns cannot be stopped, only
     * abandoned, and must not keep the test JVM alive or block the next try.
     */
    private static final ExecutorService RUNNER = Executors.newCachedThreadPool(task -> {
        Thread thread = new Thread(task, "kiln-fuzz-try");
        thread.setDaemon(true);
        return thread;
    });

    private Fuzzing() {
    }

    /** An exception a parser declares, with the message a user would read. */
    public static Predicate<Throwable> declared(List<Class<? extends Throwable>> types) {
        return e -> types.stream().anyMatch(type -> type.isInstance(e)) && e.getMessage() != null
                && !e.getMessage().isBlank();
    }

    /**
     * Runs one try and fails (naming the target, the fault and the input) unless {@code attempt}
     * returns or throws an exception that {@code declared} accepts.
     *
     * @param target   the corpus folder name, e.g. "safetensors"
     * @param input    the bytes the parser was given, kept if the try fails
     * @param attempt  the parse, and whatever use of its result must not fail either
     * @param declared accepts the exceptions the parser declares
     */
    public static void check(String target, byte[] input, Callable<?> attempt, Predicate<Throwable> declared) {
        Future<?> result = RUNNER.submit(attempt);
        Throwable thrown;
        try {
            result.get(TRY_TIMEOUT_MILLIS, TimeUnit.MILLISECONDS);
            return;
        } catch (ExecutionException e) {
            thrown = e.getCause();
        } catch (TimeoutException e) {
            result.cancel(true);
            fail(report(target, input, "no answer within " + TRY_TIMEOUT_MILLIS + " ms (a hang)", null));
            return;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while fuzzing " + target, e);
        }
        if (!declared.test(thrown)) {
            fail(report(target, input, "undeclared " + thrown, thrown));
        }
    }

    private static String report(String target, byte[] input, String fault, Throwable thrown) {
        StringBuilder message = new StringBuilder(target).append(": ").append(fault).append("\n  input (")
                .append(input.length).append(" bytes): ").append(preview(input));
        try {
            Path saved = FINDINGS.resolve(target).resolve(sha256(input).substring(0, 16) + ".bin");
            Files.createDirectories(saved.getParent());
            Files.write(saved, input);
            message.append("\n  saved to ").append(saved).append(" (copy it into ").append(CORPUS.resolve(target))
                    .append(" once fixed)");
        } catch (IOException e) {
            message.append("\n  (could not save the input: ").append(e).append(')');
        }
        if (thrown != null) {
            StringWriter trace = new StringWriter();
            thrown.printStackTrace(new PrintWriter(trace));
            String text = trace.toString();
            message.append('\n').append(text, 0, Math.min(text.length(), 4000));
        }
        return message.toString();
    }

    /** The first bytes as text, with control and non-ASCII bytes escaped, so a failure can be read in a CI log. */
    public static String preview(byte[] input) {
        StringBuilder out = new StringBuilder();
        int shown = Math.min(input.length, 600);
        for (int i = 0; i < shown; i++) {
            int b = input[i] & 0xFF;
            if (b >= 0x20 && b < 0x7F && b != '\\') {
                out.append((char) b);
            } else {
                out.append(String.format("\\x%02x", b));
            }
        }
        return shown < input.length ? out + "..." : out.toString();
    }

    /** The corpus files of a target, sorted by name, for replay. */
    public static Stream<Path> corpus(String target) {
        Path folder = CORPUS.resolve(target);
        try (Stream<Path> files = Files.list(folder)) {
            List<Path> sorted = files.filter(Files::isRegularFile).sorted().toList();
            if (sorted.isEmpty()) {
                throw new IllegalStateException("the fuzz corpus " + folder + " is empty");
            }
            return sorted.stream();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list the fuzz corpus " + folder, e);
        }
    }

    public static byte[] read(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    /** A folder for one target's files, removed when the JVM exits. */
    public static Path scratchDirectory(String target) {
        try {
            Path dir = Files.createTempDirectory("kiln-fuzz-" + target);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir)));
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted((a, b) -> b.getNameCount() - a.getNameCount()).forEach(path -> path.toFile().delete());
        } catch (IOException e) {
            // a leftover temp folder is harmless
        }
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
