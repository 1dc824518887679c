package ai.kiln.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code kiln bench}'s results as a table for people: a heading (model, device, sampling), then a
 * row per batch size with the figures of its best run, from the same values as the JSON lines.
 */
final class BenchTable {

    /** A column: its heading, the JSON field it shows, and the decimals it is shown with. */
    private record Column(String heading, String field, int decimals) {
    }

    private static final List<Column> COLUMNS = List.of(
            new Column("batch", "batch", 0),
            new Column("prompt", "prompt_len", 0),
            new Column("output", "output_len", 0),
            new Column("tok/s", "output_tokens_per_s", 1),
            new Column("decode tok/s", "decode_tokens_per_s", 1),
            new Column("TTFT median ms", "ttft_ms_median", 2),
            new Column("TTFT max ms", "ttft_ms_max", 2),
            new Column("total s", "total_s", 2),
            new Column("Java us/step", "java_us_per_step", 1),
            new Column("model us/step", "model_us_per_step", 1));

    private BenchTable() {
    }

    static String render(String model, String device, String sampling, int repeat, List<ObjectNode> lines) {
        List<String[]> cells = new ArrayList<>();
        String[] headings = COLUMNS.stream().map(Column::heading).toArray(String[]::new);
        cells.add(headings);
        for (ObjectNode line : lines) {
            String[] row = new String[COLUMNS.size()];
            for (int c = 0; c < row.length; c++) {
                Column column = COLUMNS.get(c);
                row[c] = String.format(Locale.ROOT, "%." + column.decimals() + "f", line.get(column.field()).asDouble());
            }
            cells.add(row);
        }
        int[] widths = new int[COLUMNS.size()];
        for (String[] row : cells) {
            for (int c = 0; c < row.length; c++) {
                widths[c] = Math.max(widths[c], row[c].length());
            }
        }
        StringBuilder table = new StringBuilder();
        table.append(model).append(" on ").append(device).append(", ").append(sampling).append(", best of ")
                .append(repeat).append(repeat == 1 ? " run" : " runs").append(" per batch size")
                .append(lines.isEmpty() ? "" : String.format(Locale.ROOT, ", loaded in %.1f s",
                        lines.get(0).get("load_s").asDouble()))
                .append('\n');
        for (String[] row : cells) {
            for (int c = 0; c < row.length; c++) {
                table.append(c == 0 ? "" : "  ").append(" ".repeat(widths[c] - row[c].length())).append(row[c]);
            }
            table.append('\n');
        }
        return table.toString();
    }
}
