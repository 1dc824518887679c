package ai.kiln.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** {@code kiln} as a process of its own, on this test's class path: what a user sees on stdout and stderr, log set-up included. */
public final class KilnProcess {

    private KilnProcess() {
    }

    /** A process builder for {@code kiln args...}. */
    public static ProcessBuilder of(String... args) {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), KilnCli.class.getName()));
        command.addAll(List.of(args));
        return new ProcessBuilder(command);
    }
}
