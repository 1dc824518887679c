package ai.kiln.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code kiln} command: one subcommand per job. */
@Command(name = "kiln", mixinStandardHelpOptions = true, version = "kiln 0.1.0",
        description = "LLM inference runtime for the JVM.",
        subcommands = {GenerateCommand.class, ChatCommand.class, ai.kiln.server.ServeCommand.class, TokenizeCommand.class,
            ManifestCommand.class, PublishCommand.class, CompileCommand.class,
            ai.kiln.bench.BenchCommand.class})
public final class KilnCli implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required");
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs the command line and returns its exit code (0 success, 1 failure, 2 usage error). */
    public static int execute(String... args) {
        CommandLine commandLine = new CommandLine(new KilnCli());
        commandLine.setExecutionExceptionHandler((exception, cmd, parseResult) -> {
            cmd.getErr().println("kiln: " + describe(exception));
            return 1;
        });
        // The log's layout and level follow the command's flags (--log-format, --verbose), so the
        // log is set up between parsing and running.
        commandLine.setExecutionStrategy(parseResult -> {
            CliLogging.configureFor(parseResult);
            return new CommandLine.RunLast().execute(parseResult);
        });
        return commandLine.execute(args);
    }

    /** One line naming the problem: the message, with its cause where the message alone is vague. */
    static String describe(Throwable exception) {
        String message = exception.getMessage();
        if (message == null || message.isBlank()) {
            message = exception.getClass().getSimpleName();
        }
        return message;
    }
}
