package ai.kiln.cli;

/**
 * A problem the user must mend that is not a usage error: an input file's content, a model that
 * cannot hold the conversation. The command prints its message after its own name and exits with
 * code 1 (usage errors are picocli's ParameterException, exit code 2).
 */
final class CommandFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;

    CommandFailure(String message) {
        super(message);
    }
}
