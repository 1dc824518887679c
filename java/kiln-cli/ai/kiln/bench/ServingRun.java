package ai.kiln.bench;

/**
 * One run of {@code kiln bench serve}: the request rate it ran at (infinite: all at once) and its
 * figures; a sweep is a list of them, one per rate.
 */
public record ServingRun(double requestRate, ServingReport report) {

    /** The rate as the flags spell it: "inf", or the number without a needless ".0". */
    public String rateLabel() {
        return rateLabel(requestRate);
    }

    /** A request rate as the flags spell it: "inf", or the number without a needless ".0". */
    public static String rateLabel(double requestRate) {
        if (Double.isInfinite(requestRate)) {
            return "inf";
        }
        return requestRate == Math.rint(requestRate) ? Long.toString((long) requestRate)
                : Double.toString(requestRate);
    }
}
