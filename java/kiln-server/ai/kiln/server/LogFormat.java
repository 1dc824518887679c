package ai.kiln.server;

import java.util.Arrays;
import java.util.Locale;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * How {@code kiln serve} writes its log ({@code --log-format}). The server only names the format:
 * the logging backend, and so the writing, belongs to the application (kiln-cli's Logback set-up
 * reads this option), since a library must not pick its users' backend.
 */
public enum LogFormat {
    /** One line per event, for people: time, level, logger, message. */
    TEXT,
    /** One JSON object per line, for log collectors: time, level, logger, message and the event's fields. */
    JSON;

    /** The name on the command line. */
    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Reads {@code text} or {@code json}, in any case. */
    public static final class Converter implements ITypeConverter<LogFormat> {
        @Override
        public LogFormat convert(String value) {
            for (LogFormat format : values()) {
                if (format.toString().equalsIgnoreCase(value)) {
                    return format;
                }
            }
            throw new TypeConversionException("expected one of " + Arrays.toString(values()) + ", got '" + value + "'");
        }
    }
}
