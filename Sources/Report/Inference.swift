import Foundation

/// The inference behind every aggregate Pathbed prints: Student's t interval for a mean, and
/// Welch's t-test (unequal variances) with its interval for the difference of two means. Both
/// assume the per-run values are independent draws; a run's repetitions of one fault are
/// averaged into one value per run before they get here.
public enum Inference {
    /// The confidence of every interval Pathbed gives.
    public static let confidence = 0.95
    public static let method = "Student's t on the per-run values (a 95 % interval of the mean)"
    public static let comparisonMethod = "Welch's t-test (unequal variances), two-sided, with a 95 % interval of B - A"

    /// The regularized incomplete beta function I_x(a, b), by its continued fraction
    /// (Lentz's method, as Numerical Recipes gives it).
    static func incompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
        guard x > 0 else { return 0 }
        guard x < 1 else { return 1 }
        let logs: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let powers: Double = a * log(x) + b * log(1 - x)
        let front = exp(logs + powers)
        // The fraction converges fast for x < (a + 1) / (a + b + 2); the symmetry gives the rest.
        if x > (a + 1) / (a + b + 2) { return 1 - incompleteBeta(1 - x, b, a) }
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...300 {
            let m = Double(m)
            var num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + num * d; if abs(d) < tiny { d = tiny }
            c = 1 + num / c; if abs(c) < tiny { c = tiny }
            d = 1 / d; h *= d * c
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + num * d; if abs(d) < tiny { d = tiny }
            c = 1 + num / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let step = d * c
            h *= step
            if abs(step - 1) < 1e-15 { break }
        }
        return front * h / a
    }

    /// P(T <= t) for Student's t with `df` degrees of freedom (df > 0, not necessarily whole:
    /// Welch's are not).
    public static func studentCDF(_ t: Double, df: Double) -> Double {
        guard t.isFinite else { return t > 0 ? 1 : 0 }
        let tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5)
        return t > 0 ? 1 - tail : tail
    }

    /// The t with P(T <= t) = p, by bisection on the CDF (to 1e-10); NaN for a p or df that
    /// has none (figures from a results file can make any df).
    public static func studentQuantile(_ p: Double, df: Double) -> Double {
        guard p > 0, p < 1, df.isFinite, df > 0 else { return .nan }
        var low = -1e6, high = 1e6
        for _ in 0..<200 {
            let mid = (low + high) / 2
            if studentCDF(mid, df: df) < p { low = mid } else { high = mid }
            if high - low < 1e-10 { break }
        }
        return (low + high) / 2
    }

    /// A mean's confidence interval: nil with fewer than two values (no spread to judge by).
    /// Nil too where the figures are too large to give one (an overflow is no interval).
    public static func meanInterval(_ xs: [Double]) -> (low: Double, high: Double)? {
        guard xs.count >= 2 else { return nil }
        let n = Double(xs.count), m = xs.reduce(0, +) / n
        let sd = (xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / (n - 1)).squareRoot()
        let half = studentQuantile(0.5 + confidence / 2, df: n - 1) * sd / n.squareRoot()
        guard (m - half).isFinite, (m + half).isFinite else { return nil }
        return (m - half, m + half)
    }

    /// Welch's test of B against A.
    public struct Welch: Codable, Sendable, Equatable {
        /// mean(B) - mean(A), and its 95 % interval.
        public var difference: Double
        public var low: Double
        public var high: Double
        /// Absent where the sides have no spread (the difference is exact: t would be infinite).
        public var t: Double?
        public var degreesOfFreedom: Double
        /// Two-sided.
        public var p: Double
    }

    /// Nil with fewer than two values on a side. Where both sides have no spread at all, the
    /// difference is exact: p is 0 if the means differ, 1 if they do not.
    public static func welch(_ a: [Double], _ b: [Double]) -> Welch? {
        guard a.count >= 2, b.count >= 2 else { return nil }
        func moments(_ xs: [Double]) -> (Double, Double) {
            let n = Double(xs.count), m = xs.reduce(0, +) / n
            return (m, xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / (n - 1))
        }
        let (ma, va) = moments(a), (mb, vb) = moments(b)
        let na = Double(a.count), nb = Double(b.count)
        let sa = va / na, sb = vb / nb, se2 = sa + sb
        let d = mb - ma
        guard d.isFinite, se2.isFinite else { return nil }
        guard se2 > 0 else { return Welch(difference: d, low: d, high: d, t: d == 0 ? 0 : nil, degreesOfFreedom: na + nb - 2, p: d == 0 ? 1 : 0) }
        let df = se2 * se2 / (sa * sa / (na - 1) + sb * sb / (nb - 1))
        let t = d / se2.squareRoot()
        // Spreads so small that their squares vanish make no degrees of freedom: no test.
        guard df.isFinite, df > 0, t.isFinite else { return nil }
        let p = min(1, 2 * studentCDF(-abs(t), df: df))
        let half = studentQuantile(0.5 + confidence / 2, df: df) * se2.squareRoot()
        guard p.isFinite, half.isFinite else { return nil }
        return Welch(difference: d, low: d - half, high: d + half, t: t, degreesOfFreedom: df, p: p)
    }
}

