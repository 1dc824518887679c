package ai.kiln.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * {@code kiln bench serve --sweep}'s results as a table for people: a row per request rate, in the
 * order run, with the figures that show how the server bears the load (throughput against the
 * latencies); the JSON lines hold the rest.
 */
final class ServingSweepTable {

    /** A column: its heading and its cell of a run. */
    private record Column(String heading, Function<ServingRun, String> cell) {
    }

    private static final List<Column> COLUMNS = List.of(
            new Column("rate req/s", ServingRun::rateLabel),
            new Column("completed", run -> Integer.toString(run.report().completed())),
            new Column("failed", run -> Integer.toString(run.report().failed())),
            new Column("req/s", run -> fixed(run.report().requestThroughput())),
            new Column("output tok/s", run -> fixed(run.report().outputThroughput())),
            new Column("TTFT median ms", run -> fixed(run.report().ttft().median())),
            new Column("TTFT p99 ms", run -> fixed(run.report().ttft().p99())),
            new Column("TPOT median ms", run -> fixed(run.report().tpot().median())),
            new Column("TPOT p99 ms", run -> fixed(run.report().tpot().p99())),
            new Column("ITL median ms", run -> fixed(run.report().itl().median())),
            new Column("E2EL median ms", run -> fixed(run.report().e2el().median())));

    private ServingSweepTable() {
    }

    static String render(List<ServingRun> runs) {
        List<String[]> rows = new ArrayList<>();
        rows.add(COLUMNS.stream().map(Column::heading).toArray(String[]::new));
        for (ServingRun run : runs) {
            rows.add(COLUMNS.stream().map(column -> column.cell().apply(run)).toArray(String[]::new));
        }
        int[] widths = new int[COLUMNS.size()];
        for (String[] row : rows) {
            for (int c = 0; c < row.length; c++) {
                widths[c] = Math.max(widths[c], row[c].length());
            }
        }
        StringBuilder table = new StringBuilder("Serving Benchmark Sweep (" + runs.size() + " request rates)\n");
        for (String[] row : rows) {
            for (int c = 0; c < row.length; c++) {
                table.append(c == 0 ? "" : "  ").append(" ".repeat(widths[c] - row[c].length())).append(row[c]);
            }
            table.append('\n');
        }
        return table.toString();
    }

    private static String fixed(double value) {
        return Double.isNaN(value) ? "n/a" : String.format(Locale.ROOT, "%.2f", value);
    }
}
