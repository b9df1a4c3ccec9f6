using ILGPU.Runtime;
using Xception.Gpu.Ops;
using Xunit;

namespace Xception.Gpu.Tests.Ops;

/// <summary>
/// The deterministic column reductions (per-chunk partial sums, then a fixed-order sum of the chunks) that the
/// GEMM's split-K, dense bias gradients, batch norm and the convolution weight gradients build on.
///
/// Sizes: a single value, one row, one column, 13x11, prime row counts (so the last chunk is ragged whenever
/// chunks hold more than one row, as on the CPU backends) and 20011 x 3 (a long sum). Tolerance: every output is a float32 sum of K = rows
/// terms (K = rows + 1 with the beta term), so <see cref="Check.ForSum"/>(K) = 16 u (sqrt(K) + 1) applies; the
/// two stages only regroup the same K additions (chunk sums, then a sum of chunks), which keeps the error of
/// order u sqrt(K), and a lost or doubled chunk is off by whole rows, orders of magnitude above it.
/// </summary>
public class ReductionsTests
{
    static readonly (int Rows, int Cols)[] Cases = [(1, 1), (7, 1), (1, 7), (13, 11), (1009, 1), (4099, 67), (20011, 3)];

    /// <summary>Float64 column sums of x [rows, cols] plus beta times the output's previous values.</summary>
    static double[] ColumnSums(float[] x, int rows, int cols, float beta, float[] before)
    {
        var s = new double[cols];
        for (int c = 0; c < cols; c++) s[c] = beta * (double)before[c];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) s[c] += x[r * cols + c];
        return s;
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void SumColumnsMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        var op = Reductions.On(d);
        foreach (var (rows, cols) in Cases)
            foreach (float beta in new[] { 0f, 0.75f })
            {
                var x = TestData.Uniform(rows * cols, 81);
                var before = TestData.Uniform(cols, 82); // stale values: beta 0 must ignore them
                using var tx = Tensor.From(d, x, rows, cols);
                using var ty = Tensor.From(d, before, cols);
                op.SumColumns(tx.View, rows, cols, beta, ty.View);
                Check.Close($"sum columns {rows}x{cols} beta {beta}", ty.ToArray(), ColumnSums(x, rows, cols, beta, before),
                    Check.ForSum(rows + (beta != 0 ? 1 : 0)));
            }
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void SumRowsMatchesReference(string backend)
    {
        var d = Backends.Get(backend);
        var op = Reductions.On(d);
        // SumRows is the second stage: rows are the chunks, length the outputs.
        foreach (var (rows, length) in Cases)
            foreach (float beta in new[] { 0f, -1.5f })
            {
                var partial = TestData.Uniform(rows * length, 83);
                var before = TestData.Uniform(length, 84);
                using var tp = Tensor.From(d, partial, rows, length);
                using var ty = Tensor.From(d, before, length);
                op.SumRows(tp.View, rows, length, beta, ty.View);
                Check.Close($"sum rows {rows}x{length} beta {beta}", ty.ToArray(), ColumnSums(partial, rows, length, beta, before),
                    Check.ForSum(rows + (beta != 0 ? 1 : 0)));
            }
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ChunkingCoversEveryRowOnce(string backend)
    {
        var op = Reductions.On(Backends.Get(backend));
        bool ragged = false;
        // Beyond the sum cases: more columns than threads (one chunk), and a million rows, which a GPU with
        // ~270k threads cuts into chunks of 2 with a short last one (the sum cases give it one row per chunk).
        foreach (var (rows, cols) in Cases.Append((20011, 100_000)).Append((1, 1 << 20)).Append((1_000_003, 1)))
        {
            var (chunkRows, chunks) = op.Chunking(rows, cols);
            string what = $"chunking {rows} rows x {cols} columns: {chunks} chunks of {chunkRows}";
            Assert.True(chunkRows >= 1 && chunks >= 1, what);
            // Enough chunks for every row, and no chunk that starts past the last row.
            Assert.True((long)chunkRows * chunks >= rows && (long)chunkRows * (chunks - 1) < rows, what);
            ragged |= rows % chunkRows != 0;
        }
        // At least one case on every backend has a last chunk shorter than the others.
        Assert.True(ragged, "no case cuts its rows into chunks unevenly");
    }

    [Theory]
    [MemberData(nameof(Backends.All), MemberType = typeof(Backends))]
    public void ChunkedSumAddsThePartialsOfEveryChunk(string backend)
    {
        var d = Backends.Get(backend);
        var op = Reductions.On(d);
        foreach (var (rows, cols) in Cases)
        {
            var x = TestData.Uniform(rows * cols, 85);
            using var ty = Tensor.From(d, TestData.Uniform(cols, 86), cols); // stale values must be overwritten
            int threadsPerChunk = cols;
            var (wantRows, wantChunks) = op.Chunking(rows, threadsPerChunk);
            int calls = 0;
            // The op's partial kernel, stood in for by the host: it must get the chunk length and a scratch of
            // [chunks, length] values, and writes each chunk's column sums (in float32, as a kernel would).
            op.ChunkedSum(rows, threadsPerChunk, cols, (grid, chunkRows, partial) =>
            {
                calls++;
                Assert.Equal(wantRows, chunkRows);
                Assert.Equal((long)wantChunks * cols, partial.Length);
                var p = new float[partial.Length];
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < cols; c++) p[r / chunkRows * cols + c] += x[r * cols + c];
                partial.CopyFromCPU(p);
            }, ty.View);
            Assert.Equal(1, calls);
            Check.Close($"chunked sum {rows}x{cols}", ty.ToArray(), ColumnSums(x, rows, cols, 0f, new float[cols]), Check.ForSum(rows));
        }
    }

    [Fact]
    public void OneInstancePerDevice()
    {
        var d = Backends.Get(Backends.Cpu);
        Assert.Same(Reductions.On(d), Reductions.On(d));
    }
}
