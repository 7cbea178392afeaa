// DuckDB's string similarities for Spark, giving exactly DuckDB's numbers (docs/adr/0009-spark-engine.md).
//
// DuckDB's jaro_similarity, jaro_winkler_similarity and damerau_levenshtein (RapidFuzz's C++ code) work on
// UTF-8 bytes, and Jaro halves the transpositions rounding down. Spark 4's and Splink's JVM Jaro-Winkler
// count half transpositions and characters: 'williams'/'wilmiams' is 0.908 on DuckDB and 0.892 on them,
// either side of a 0.9 level, so a pair would change level between engines. Compiled by the Spark engine
// (linkage_models/_engine.py) into a jar it ships to the executors with `spark.jars`; JVM code, no Python.
package familylink;

import java.nio.charset.StandardCharsets;
import org.apache.spark.sql.api.java.UDF2;

public final class DuckDBSimilarity {
    private DuckDBSimilarity() {}

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Jaro: each byte of a matches the first unmatched equal byte of b within max(len)/2 - 1 of it. */
    static double jaro(byte[] a, byte[] b) {
        int n1 = a.length, n2 = b.length;
        if (n1 == 0 || n2 == 0) {
            return 0.0;  // DuckDB: 0 for two empty strings too
        }
        int window = Math.max(Math.max(n1, n2) / 2 - 1, 0);
        boolean[] matchedB = new boolean[n2];
        byte[] matchedA = new byte[n1];
        int m = 0;
        for (int i = 0; i < n1; i++) {
            for (int k = Math.max(0, i - window), hi = Math.min(n2 - 1, i + window); k <= hi; k++) {
                if (!matchedB[k] && b[k] == a[i]) {
                    matchedB[k] = true;
                    matchedA[m++] = a[i];
                    break;
                }
            }
        }
        if (m == 0) {
            return 0.0;
        }
        int outOfOrder = 0;
        for (int k = 0, j = 0; k < n2; k++) {
            if (matchedB[k]) {
                if (b[k] != matchedA[j]) {
                    outOfOrder++;
                }
                j++;
            }
        }
        int transpositions = outOfOrder / 2;  // rounded down, as DuckDB does
        return ((double) m / n1 + (double) m / n2 + (double) (m - transpositions) / m) / 3.0;
    }

    /** Winkler: above 0.7, each byte of a common prefix (at most 4) closes a tenth of the gap. */
    static double jaroWinkler(byte[] a, byte[] b) {
        double sim = jaro(a, b);
        if (sim > 0.7) {
            int prefix = 0;
            for (int limit = Math.min(4, Math.min(a.length, b.length)); prefix < limit && a[prefix] == b[prefix]; ) {
                prefix++;
            }
            sim += prefix * 0.1 * (1.0 - sim);
        }
        return sim;
    }

    /** Unrestricted Damerau-Levenshtein (Lowrance-Wagner): a transposed pair may also be edited between. */
    static long damerauLevenshtein(byte[] a, byte[] b) {
        int n1 = a.length, n2 = b.length, infinity = n1 + n2;
        int[] lastRow = new int[256];  // the last row of a where each byte value was seen
        int[][] d = new int[n1 + 2][n2 + 2];
        d[0][0] = infinity;
        for (int i = 0; i <= n1; i++) {
            d[i + 1][0] = infinity;
            d[i + 1][1] = i;
        }
        for (int j = 0; j <= n2; j++) {
            d[0][j + 1] = infinity;
            d[1][j + 1] = j;
        }
        for (int i = 1; i <= n1; i++) {
            int lastMatchColumn = 0;
            for (int j = 1; j <= n2; j++) {
                int k = lastRow[b[j - 1] & 0xff], l = lastMatchColumn;
                int cost = 1;
                if (a[i - 1] == b[j - 1]) {
                    cost = 0;
                    lastMatchColumn = j;
                }
                d[i + 1][j + 1] = Math.min(Math.min(d[i][j] + cost, d[i + 1][j] + 1),
                                           Math.min(d[i][j + 1] + 1, d[k][l] + (i - k - 1) + 1 + (j - l - 1)));
            }
            lastRow[a[i - 1] & 0xff] = i;
        }
        return d[n1 + 1][n2 + 1];
    }

    public static final class JaroSimilarity implements UDF2<String, String, Double> {
        @Override
        public Double call(String a, String b) {
            return a == null || b == null ? null : jaro(utf8(a), utf8(b));
        }
    }

    public static final class JaroWinklerSimilarity implements UDF2<String, String, Double> {
        @Override
        public Double call(String a, String b) {
            return a == null || b == null ? null : jaroWinkler(utf8(a), utf8(b));
        }
    }

    public static final class DamerauLevenshtein implements UDF2<String, String, Long> {
        @Override
        public Long call(String a, String b) {
            return a == null || b == null ? null : damerauLevenshtein(utf8(a), utf8(b));
        }
    }
}
