package dolphin.grid;

/**
 * The ACB v6 size cut: a continuous version of the v5 ladder.
 *
 * <p>v5 maps the number of active stress signals 0/1/2/3/4/5+ to a size cut of
 * 0/15/45/55/75/80 %. v6 interpolates that ladder linearly in the weighted stress count
 * {@code c = sum_i w_i * s_i} (each signal intensity {@code s_i} clipped to [0, 1], each weight
 * {@code w_i >= 0}); the cut is 0 at {@code c <= 0} and 0.80 at {@code c >= 5}. A non-finite
 * count (NaN or infinite input) gives the maximum cut: missing data never loosens risk.
 *
 * <p>The Python reference {@code dolphin.grid.acb.acb_cut_frac} performs the same IEEE-754
 * operations in the same order, so both give bit-identical results (tested).
 */
public final class AcbCut {

    /** Cut fraction at integer stress counts 0, 1, 2, 3, 4, 5 (v5 ladder). */
    static final double[] LADDER_FRAC = {0.0, 0.15, 0.45, 0.55, 0.75, 0.80};

    /** The largest cut (reached at 5 or more weighted signals, and for non-finite input). */
    public static final double MAX_CUT_FRAC = 0.80;

    private AcbCut() {
    }

    /** Weighted stress count: a left-to-right sum of w_i * clip(s_i, 0, 1). */
    public static double stressCount(double[] signals, double[] weights) {
        if (signals.length != weights.length) {
            throw new IllegalArgumentException(
                "signals and weights differ in length: " + signals.length + " != " + weights.length);
        }
        double count = 0.0;
        for (int i = 0; i < signals.length; i++) {
            double s = signals[i];
            double w = weights[i];
            if (Double.isNaN(s) || Double.isNaN(w) || w < 0.0) {
                return Double.NaN;
            }
            if (s < 0.0) {
                s = 0.0;
            } else if (s > 1.0) {
                s = 1.0;
            }
            count = count + w * s;
        }
        return count;
    }

    /** Size cut fraction in [0, 0.80] for a weighted stress count. */
    public static double cutFrac(double count) {
        if (Double.isNaN(count) || Double.isInfinite(count)) {
            return MAX_CUT_FRAC;
        }
        if (count <= 0.0) {
            return 0.0;
        }
        if (count >= 5.0) {
            return MAX_CUT_FRAC;
        }
        int i = (int) Math.floor(count);
        double lo = LADDER_FRAC[i];
        double hi = LADDER_FRAC[i + 1];
        double frac = lo + (count - i) * (hi - lo);
        return Math.min(frac, MAX_CUT_FRAC);
    }
}
