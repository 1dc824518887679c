package ai.kiln.cli;

import ai.kiln.server.LogFormat;
import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.encoder.Encoder;
import ch.qos.logback.core.spi.ContextAwareBase;
import java.nio.charset.StandardCharsets;
import java.util.List;
import net.logstash.logback.composite.loggingevent.KeyValuePairsJsonProvider;
import net.logstash.logback.composite.loggingevent.LogLevelJsonProvider;
import net.logstash.logback.composite.loggingevent.LoggerNameJsonProvider;
import net.logstash.logback.composite.loggingevent.LoggingEventFormattedTimestampJsonProvider;
import net.logstash.logback.composite.loggingevent.LoggingEventJsonProviders;
import net.logstash.logback.composite.loggingevent.LoggingEventThreadNameJsonProvider;
import net.logstash.logback.composite.loggingevent.MessageJsonProvider;
import net.logstash.logback.composite.loggingevent.StackTraceJsonProvider;
import net.logstash.logback.encoder.LoggingEventCompositeJsonEncoder;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The command line's log, on stderr, through Logback: what Jetty and Jinjava log through SLF4J,
 * what kiln-core logs through {@link System.Logger} (handed to SLF4J by
 * slf4j-jdk-platform-logging), and the server's request log.
 *
 * <p>Set up in code rather than by a logback.xml, because the command's flags choose the layout
 * and the level, and they are known only once the command line is parsed ({@link #configureFor}):
 * <ul>
 *   <li>{@link Layout#PLAIN}, for the one-shot commands: {@code kiln: <message>}, as the commands'
 *       own messages read (warnings say so);</li>
 *   <li>{@link Layout#TEXT}, {@code kiln serve}'s default: time (UTC), level, logger, message;</li>
 *   <li>{@link Layout#JSON}, {@code kiln serve --log-format json}: one object per line with
 *       {@code time}, {@code level}, {@code logger}, {@code thread}, {@code message} and the event's
 *       key-value pairs as fields (a request's {@code request_id}, {@code status}, ...).</li>
 * </ul>
 * Kiln's loggers ({@code ai.kiln}) log at INFO and the libraries' at WARN (Jetty says "Started
 * ..." at INFO on every start); {@code --verbose} lowers them to DEBUG and INFO.
 */
public final class CliLogging {

    /** How a line is written. */
    public enum Layout { PLAIN, TEXT, JSON }

    private static final String PLAIN_PATTERN = "kiln: %replace(%level: ){'^(INFO|DEBUG|TRACE): $', ''}%msg%n";
    private static final String TEXT_PATTERN = "%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX,UTC} %-5level [%logger{0}] %msg%n";

    private CliLogging() {
    }

    /**
     * The log as it is before a command line is parsed (and in tests that run a command without
     * {@link KilnCli#execute}): PLAIN at the default levels. Logback finds it through
     * META-INF/services; without it Logback would log everything at DEBUG.
     */
    public static final class Defaults extends ContextAwareBase implements Configurator {
        @Override
        public ExecutionStatus configure(LoggerContext context) {
            CliLogging.configure(context, Layout.PLAIN, false);
            return ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY;
        }
    }

    /**
     * Sets the log up for the command that {@code parsed} runs: its {@code --log-format} (serve's)
     * picks the layout, PLAIN where it has none, and its {@code --verbose} the level.
     */
    static void configureFor(CommandLine.ParseResult parsed) {
        List<CommandLine> commands = parsed.asCommandLineList();
        CommandLine.Model.CommandSpec command = commands.get(commands.size() - 1).getCommandSpec();
        OptionSpec format = command.findOption("--log-format");
        OptionSpec verbose = command.findOption("--verbose");
        Layout layout = format == null ? Layout.PLAIN
                : format.getValue() == LogFormat.JSON ? Layout.JSON : Layout.TEXT;
        configure(layout, verbose != null && Boolean.TRUE.equals(verbose.getValue()));
    }

    /** Sets the log up; does nothing where SLF4J's backend is not Logback (an application embedding the CLI). */
    public static void configure(Layout layout, boolean verbose) {
        if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
            configure(context, layout, verbose);
        }
    }

    static void configure(LoggerContext context, Layout layout, boolean verbose) {
        context.reset();
        ConsoleAppender<ILoggingEvent> stderr = new ConsoleAppender<>();
        stderr.setContext(context);
        stderr.setName("stderr");
        // NOTE: stdout is the commands' output (generated text, JSON lines, tables).
        stderr.setTarget("System.err");
        stderr.setEncoder(encoder(context, layout));
        stderr.start();
        Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        root.setLevel(verbose ? Level.INFO : Level.WARN);
        root.addAppender(stderr);
        context.getLogger("ai.kiln").setLevel(verbose ? Level.DEBUG : Level.INFO);
    }

    private static Encoder<ILoggingEvent> encoder(LoggerContext context, Layout layout) {
        if (layout == Layout.JSON) {
            // The fields in the order a person reads a line in: when, how bad, where, what, then
            // the event's own fields. (LogstashEncoder's fixed order puts the level last.)
            LoggingEventJsonProviders fields = new LoggingEventJsonProviders();
            LoggingEventFormattedTimestampJsonProvider time = new LoggingEventFormattedTimestampJsonProvider();
            time.setFieldName("time");
            time.setTimeZone("UTC");
            fields.addTimestamp(time);
            fields.addLogLevel(new LogLevelJsonProvider());
            LoggerNameJsonProvider logger = new LoggerNameJsonProvider();
            logger.setFieldName("logger");
            fields.addLoggerName(logger);
            LoggingEventThreadNameJsonProvider thread = new LoggingEventThreadNameJsonProvider();
            thread.setFieldName("thread");
            fields.addThreadName(thread);
            fields.addMessage(new MessageJsonProvider());
            fields.addKeyValuePairs(new KeyValuePairsJsonProvider());
            fields.addStackTrace(new StackTraceJsonProvider());
            LoggingEventCompositeJsonEncoder json = new LoggingEventCompositeJsonEncoder();
            json.setContext(context);
            json.setProviders(fields);
            json.start();
            return json;
        }
        PatternLayoutEncoder text = new PatternLayoutEncoder();
        text.setContext(context);
        text.setPattern(layout == Layout.PLAIN ? PLAIN_PATTERN : TEXT_PATTERN);
        text.setCharset(StandardCharsets.UTF_8);
        text.start();
        return text;
    }
}
