package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.testing.Fixtures;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code kiln generate}'s streamed text on a terminal: control characters (a random model's text
 * holds ESC, BEL and others) are shown escaped; piped, or with {@code --raw}, the text is exact.
 */
class GenerateTerminalTest {

    /** The text of a seeded sample from the fixture, stdout counting as a terminal when {@code terminal}. */
    static String generate(boolean terminal, String... extra) {
        GenerateCommand generate = new GenerateCommand();
        generate.stdoutIsTerminal = () -> terminal;
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(generate);
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        List<String> args = new ArrayList<>(List.of("--model", Fixtures.named("llama3-gqa").dir().toString(),
                "--device", "cpu", "--threads", "1", "--kv-cache-mib", "16", "--prompt", "hi", "--max-tokens", "64",
                "--seed", "1"));
        args.addAll(List.of(extra));
        assertEquals(0, cli.execute(args.toArray(String[]::new)), err.toString());
        return out.toString();
    }

    static boolean hasControls(String text) {
        return text.chars().anyMatch(c -> Character.isISOControl(c) && c != '\n' && c != '\t');
    }

    @Test
    void controlCharactersAreEscapedOnATerminalOnly() {
        String piped = generate(false);
        assertTrue(hasControls(piped), "the sample should hold control characters: " + piped);
        String shown = generate(true);
        assertFalse(hasControls(shown), shown);
        assertEquals(Terminals.escapeControls(piped), shown);
        assertTrue(shown.contains("^"), shown);
    }

    @Test
    void rawKeepsThemOnATerminal() {
        assertEquals(generate(false), generate(true, "--raw"));
    }
}
