package ai.kiln.bench;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The figures of one {@code kiln bench serve} run, computed as vLLM's benchmark_serving.py computes
 * them, so that the two compare field by field:
 *
 * <ul>
 *   <li>TTFT: from sending a request to its first chunk carrying a choice;
 *   <li>TPOT: per request with more than one output token, (latency - TTFT) / (output tokens - 1);
 *   <li>ITL: every gap between consecutive chunks of every request, pooled;
 *   <li>E2EL: from sending a request to its last chunk;
 *   <li>throughputs: completed requests' counts over the duration (first send to last completion);
 *   <li>percentiles: linear interpolation between the closest ranks (numpy's default); std over
 *       the population.
 * </ul>
 *
 * With service-level objectives ({@link ServiceLevels}), the requests that met them all are
 * counted too: {@code request_goodput} is their number over the duration (null without objectives).
 *
 * Only completed requests enter the token counts and latencies. Failures are counted, and their
 * messages grouped: messages differing only in their numbers (lengths, ids) count as one kind,
 * shown by its first example.
 */
public record ServingReport(int completed, int failed, double duration, long totalInputTokens,
        long totalOutputTokens, long requestedOutputTokens, Stats ttft, Stats tpot, Stats itl, Stats e2el,
        List<ErrorKind> errors, Integer goodRequests) {

    /** Kinds of error listed; the rest are only counted. */
    public static final int LISTED_ERROR_KINDS = 5;

    /** Milliseconds; NaN everywhere when there was no sample. */
    public record Stats(int count, double mean, double median, double std, double p90, double p99) {

        static Stats of(double[] millis) {
            if (millis.length == 0) {
                return new Stats(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
            }
            double[] sorted = millis.clone();
            Arrays.sort(sorted);
            double sum = 0;
            for (double v : sorted) {
                sum += v;
            }
            double mean = sum / sorted.length;
            double squares = 0;
            for (double v : sorted) {
                squares += (v - mean) * (v - mean);
            }
            return new Stats(sorted.length, mean, percentile(sorted, 50), Math.sqrt(squares / sorted.length),
                    percentile(sorted, 90), percentile(sorted, 99));
        }
    }

    /** One kind of failure: its first message and how many requests failed so. */
    public record ErrorKind(String message, int count) {
    }

    /** The q-th percentile of sorted values, interpolating linearly between the closest ranks. */
    public static double percentile(double[] sorted, double q) {
        double position = q / 100.0 * (sorted.length - 1);
        int below = (int) Math.floor(position);
        int above = Math.min(below + 1, sorted.length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }

    public static ServingReport of(List<RequestOutcome> outcomes, double durationSeconds) {
        return of(outcomes, durationSeconds, null);
    }

    /** The figures, and with {@code levels} not null the requests that met them. */
    public static ServingReport of(List<RequestOutcome> outcomes, double durationSeconds, ServiceLevels levels) {
        int completed = 0;
        int good = 0;
        long input = 0;
        long output = 0;
        long requested = 0;
        List<Double> ttfts = new ArrayList<>();
        List<Double> tpots = new ArrayList<>();
        List<Double> itls = new ArrayList<>();
        List<Double> e2els = new ArrayList<>();
        Map<String, String> firstMessage = new LinkedHashMap<>();
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (RequestOutcome o : outcomes) {
            if (!o.success()) {
                String kind = o.error().replaceAll("\\d+", "N");
                firstMessage.putIfAbsent(kind, o.error());
                counts.merge(kind, 1, Integer::sum);
                continue;
            }
            completed++;
            if (levels != null && levels.metBy(o)) {
                good++;
            }
            input += o.promptLen();
            output += o.outputTokens();
            requested += o.outputLen();
            ttfts.add(o.ttft() * 1e3);
            e2els.add(o.latency() * 1e3);
            if (o.outputTokens() > 1) {
                tpots.add(o.tpot() * 1e3);
            }
            for (double gap : o.itl()) {
                itls.add(gap * 1e3);
            }
        }
        List<ErrorKind> errors = new ArrayList<>();
        for (var e : counts.entrySet()) {
            errors.add(new ErrorKind(firstMessage.get(e.getKey()), e.getValue()));
        }
        return new ServingReport(completed, outcomes.size() - completed, durationSeconds, input, output, requested,
                Stats.of(millis(ttfts)), Stats.of(millis(tpots)), Stats.of(millis(itls)), Stats.of(millis(e2els)),
                List.copyOf(errors), levels == null ? null : good);
    }

    private static double[] millis(List<Double> values) {
        return values.stream().mapToDouble(Double::doubleValue).toArray();
    }

    public double requestThroughput() {
        return completed / duration;
    }

    /** Requests per second that met every objective; NaN without objectives. */
    public double requestGoodput() {
        return goodRequests == null ? Double.NaN : goodRequests / duration;
    }

    public double inputThroughput() {
        return totalInputTokens / duration;
    }

    public double outputThroughput() {
        return totalOutputTokens / duration;
    }

    public double totalTokenThroughput() {
        return (totalInputTokens + totalOutputTokens) / duration;
    }

    /** The result line: {@code parameters}' fields first, then the figures under vLLM's names. */
    public ObjectNode toJson(ObjectNode parameters) {
        ObjectNode line = parameters.deepCopy();
        line.put("completed", completed);
        line.put("failed", failed);
        line.put("duration", round(duration));
        line.put("total_input_tokens", totalInputTokens);
        line.put("total_output_tokens", totalOutputTokens);
        line.put("requested_output_tokens", requestedOutputTokens);
        line.put("request_throughput", round(requestThroughput()));
        if (goodRequests == null) {
            line.putNull("request_goodput");
        } else {
            line.put("request_goodput", round(requestGoodput()));
        }
        line.put("input_throughput", round(inputThroughput()));
        line.put("output_throughput", round(outputThroughput()));
        line.put("total_token_throughput", round(totalTokenThroughput()));
        putStats(line, "ttft", ttft);
        putStats(line, "tpot", tpot);
        putStats(line, "itl", itl);
        putStats(line, "e2el", e2el);
        ArrayNode listed = line.putArray("errors");
        int unlisted = 0;
        for (int i = 0; i < errors.size(); i++) {
            if (i < LISTED_ERROR_KINDS) {
                listed.addObject().put("message", errors.get(i).message()).put("count", errors.get(i).count());
            } else {
                unlisted += errors.get(i).count();
            }
        }
        line.put("failed_unlisted", unlisted);
        return line;
    }

    private static void putStats(ObjectNode line, String metric, Stats s) {
        putMillis(line, "mean_" + metric + "_ms", s.mean());
        putMillis(line, "median_" + metric + "_ms", s.median());
        putMillis(line, "std_" + metric + "_ms", s.std());
        putMillis(line, "p90_" + metric + "_ms", s.p90());
        putMillis(line, "p99_" + metric + "_ms", s.p99());
    }

    private static void putMillis(ObjectNode line, String name, double value) {
        if (Double.isNaN(value)) {
            line.putNull(name);
        } else {
            line.put(name, round(value));
        }
    }

    private static double round(double value) {
        return Math.round(value * 1000) / 1000.0;
    }

    /** A table for people, in the layout of vLLM's. */
    public String summary() {
        StringBuilder out = new StringBuilder();
        out.append(title("Serving Benchmark Result", '='));
        row(out, "Successful requests:", Integer.toString(completed));
        row(out, "Failed requests:", Integer.toString(failed));
        row(out, "Benchmark duration (s):", fixed(duration));
        row(out, "Total input tokens:", Long.toString(totalInputTokens));
        row(out, "Total generated tokens:", totalOutputTokens + " (asked " + requestedOutputTokens + ")");
        row(out, "Request throughput (req/s):", fixed(requestThroughput()));
        if (goodRequests != null) {
            row(out, "Request goodput (req/s):", fixed(requestGoodput()));
        }
        row(out, "Input token throughput (tok/s):", fixed(inputThroughput()));
        row(out, "Output token throughput (tok/s):", fixed(outputThroughput()));
        row(out, "Total token throughput (tok/s):", fixed(totalTokenThroughput()));
        section(out, "Time to First Token", "TTFT", ttft);
        section(out, "Time per Output Token (excl. 1st token)", "TPOT", tpot);
        section(out, "Inter-token Latency", "ITL", itl);
        section(out, "End-to-end Latency", "E2EL", e2el);
        if (!errors.isEmpty()) {
            out.append(title("Errors", '-'));
            for (int i = 0; i < Math.min(errors.size(), LISTED_ERROR_KINDS); i++) {
                out.append(String.format("%6d x %s%n", errors.get(i).count(), errors.get(i).message()));
            }
            if (errors.size() > LISTED_ERROR_KINDS) {
                out.append(String.format("%6d more, of %d other kinds%n",
                        errors.stream().skip(LISTED_ERROR_KINDS).mapToInt(ErrorKind::count).sum(),
                        errors.size() - LISTED_ERROR_KINDS));
            }
        }
        out.append("=".repeat(50)).append('\n');
        return out.toString();
    }

    private static void section(StringBuilder out, String name, String abbreviation, Stats s) {
        out.append(title(name, '-'));
        row(out, "Mean " + abbreviation + " (ms):", fixed(s.mean()));
        row(out, "Median " + abbreviation + " (ms):", fixed(s.median()));
        row(out, "P90 " + abbreviation + " (ms):", fixed(s.p90()));
        row(out, "P99 " + abbreviation + " (ms):", fixed(s.p99()));
    }

    private static String title(String name, char fill) {
        int left = Math.max(1, (50 - name.length() - 2) / 2);
        int right = Math.max(1, 50 - name.length() - 2 - left);
        return String.valueOf(fill).repeat(left) + " " + name + " " + String.valueOf(fill).repeat(right) + "\n";
    }

    private static void row(StringBuilder out, String label, String value) {
        out.append(String.format("%-40s %s%n", label, value));
    }

    private static String fixed(double value) {
        return Double.isNaN(value) ? "n/a" : String.format("%.2f", value);
    }
}
