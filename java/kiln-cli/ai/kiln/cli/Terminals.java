package ai.kiln.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Whether the standard streams are terminals, and text made safe to show on one. */
public final class Terminals {

    public static final int STDIN = 0;
    public static final int STDOUT = 1;
    public static final int STDERR = 2;

    private Terminals() {
    }

    /**
     * Whether file descriptor {@code fd} of this process is a terminal. Java has no isatty: on
     * Linux the descriptor's link under /proc names its device; elsewhere {@link System#console()}
     * answers for stdin and stdout together.
     */
    public static boolean isTerminal(int fd) {
        try {
            String device = Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
            return device.startsWith("/dev/pts/") || device.startsWith("/dev/tty") || device.equals("/dev/console");
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            return System.console() != null;
        }
    }

    /**
     * {@code text} with its control characters made visible, newline and tab excepted: C0 controls
     * and DEL in caret notation ({@code ^[} for ESC, {@code ^?} for DEL), C1 controls as
     * {@code <U+009B>}. A model's text can hold any of them (random weights produce ESC often), and
     * written raw they would move the cursor, recolour or retitle the user's terminal.
     */
    public static String escapeControls(String text) {
        StringBuilder escaped = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            boolean control = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f || (c >= 0x80 && c <= 0x9f);
            if (!control) {
                if (escaped != null) {
                    escaped.append(c);
                }
                continue;
            }
            if (escaped == null) {
                escaped = new StringBuilder(text.length() + 8).append(text, 0, i);
            }
            if (c < 0x20) {
                escaped.append('^').append((char) (c + 0x40));
            } else if (c == 0x7f) {
                escaped.append("^?");
            } else {
                escaped.append(String.format("<U+%04X>", (int) c));
            }
        }
        return escaped == null ? text : escaped.toString();
    }
}
