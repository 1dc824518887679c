package ai.kiln.bench;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.GraphicsEnvironment;
import java.awt.RenderingHints;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import javax.imageio.ImageIO;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.TextTitle;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * {@code kiln bench serve --plot FILE.png}: how latency grows with throughput over a sweep's runs
 * (a single run is one point per series), as one PNG of two charts side by side: TTFT on the left,
 * TPOT on the right, each in milliseconds against the output throughput (tokens/s), a line each
 * for the median, p90 and p99, the median's points labelled with their request rate. Drawn by
 * JFreeChart into an image in memory: it needs no display, but it does need a font to measure and
 * draw text (on Debian, fontconfig and a font package such as fonts-dejavu-core).
 */
final class ServingPlot {

    static final int WIDTH = 1600;
    static final int HEIGHT = 600;

    /** A line of a chart: its name and the statistic it takes from the metric's figures. */
    private record Series(String name, Function<ServingReport.Stats, Double> value, Color color) {
    }

    private static final List<Series> PERCENTILES = List.of(
            new Series("median", ServingReport.Stats::median, new Color(0x1F77B4)),
            new Series("p90", ServingReport.Stats::p90, new Color(0xFF7F0E)),
            new Series("p99", ServingReport.Stats::p99, new Color(0xD62728)));

    private ServingPlot() {
    }

    /** Refuses a file the plot cannot be written as, before any request is sent. */
    static void checkFile(Path file) {
        Path name = file.getFileName();
        if (name == null || !name.toString().toLowerCase(Locale.ROOT).endsWith(".png")) {
            throw new IllegalArgumentException("--plot writes a PNG image: its file name must end in .png, got " + file);
        }
    }

    /**
     * Fails, with what to install, where the JVM finds no font to draw the charts' text with; for a
     * command to call before it sends any request. Call it headless, as {@link #write}.
     */
    static void requireFonts() {
        String found;
        try {
            found = GraphicsEnvironment.getLocalGraphicsEnvironment().getAvailableFontFamilyNames().length > 0 ? null
                    : "no font family";
        } catch (InternalError | RuntimeException e) {
            // NOTE: what OpenJDK throws on Linux when fontconfig finds no font (an InternalError
            // wrapping "Fontconfig head is null"), or, in some versions, a NullPointerException.
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            found = root.getMessage() != null ? root.getMessage() : root.toString();
        }
        if (found != null) {
            throw new IllegalStateException("--plot draws text and this JVM finds no font (" + found + "): install"
                    + " fontconfig and a font (Debian: apt-get install fontconfig fonts-dejavu-core)");
        }
    }

    /**
     * Draws the runs' charts into {@code file}. Callers set {@code java.awt.headless=true} before
     * AWT is first touched, so that no display is looked for.
     *
     * @param subtitle a line under each chart's title, e.g. the model and the dataset
     */
    static void write(Path file, List<ServingRun> runs, String subtitle) throws IOException {
        checkFile(file);
        BufferedImage image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, WIDTH, HEIGHT);
            int half = WIDTH / 2;
            chart("TTFT", "time to first token", ServingReport::ttft, runs, subtitle)
                    .draw(g, new Rectangle2D.Double(0, 0, half, HEIGHT));
            chart("TPOT", "time per output token", ServingReport::tpot, runs, subtitle)
                    .draw(g, new Rectangle2D.Double(half, 0, WIDTH - half, HEIGHT));
        } finally {
            g.dispose();
        }
        if (!ImageIO.write(image, "png", file.toFile())) {
            throw new IOException("no PNG writer in this JDK to write " + file);
        }
    }

    /** One metric's chart: a series per percentile, the runs in the order they ran. */
    static JFreeChart chart(String metric, String words, Function<ServingReport, ServingReport.Stats> figures,
            List<ServingRun> runs, String subtitle) {
        XYSeriesCollection dataset = new XYSeriesCollection();
        // The request rate of each point drawn, per series: runs without the figure (none completed) are left out.
        List<List<String>> rates = new ArrayList<>();
        for (Series percentile : PERCENTILES) {
            // NOTE: not sorted by throughput, so that each line joins the runs in the order of their rates.
            XYSeries series = new XYSeries(percentile.name() + " " + metric, false, true);
            List<String> labels = new ArrayList<>();
            for (ServingRun run : runs) {
                double millis = percentile.value().apply(figures.apply(run.report()));
                double throughput = run.report().outputThroughput();
                if (Double.isFinite(millis) && Double.isFinite(throughput)) {
                    series.add(throughput, millis);
                    labels.add(run.rateLabel().equals("inf") ? "inf" : run.rateLabel() + " req/s");
                }
            }
            dataset.addSeries(series);
            rates.add(labels);
        }
        JFreeChart chart = ChartFactory.createXYLineChart(metric + " (" + words + ") against output throughput",
                "output throughput (tok/s)", metric + " (ms)", dataset);
        chart.setBackgroundPaint(Color.WHITE);
        if (subtitle != null) {
            chart.addSubtitle(new TextTitle(subtitle));
        }
        XYPlot plot = chart.getXYPlot();
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
        // From 0 on both axes: the charts compare runs by size, and a single run's point gets a
        // range around it (a range of one value has no ticks to label).
        ((NumberAxis) plot.getDomainAxis()).setAutoRangeIncludesZero(true);
        ((NumberAxis) plot.getRangeAxis()).setAutoRangeIncludesZero(true);
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, true);
        for (int s = 0; s < PERCENTILES.size(); s++) {
            renderer.setSeriesPaint(s, PERCENTILES.get(s).color());
            renderer.setSeriesStroke(s, new BasicStroke(2f));
        }
        renderer.setSeriesItemLabelGenerator(0, (data, series, item) -> rates.get(series).get(item));
        renderer.setSeriesItemLabelsVisible(0, true);
        plot.setRenderer(renderer);
        return chart;
    }
}
