namespace Xception.Gpu.Kernels.Cpu;

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using X86 = System.Runtime.Intrinsics.X86;

/// <summary>
/// Marks a class of kernels that only the CPU accelerator runs: their bodies call <see cref="ILGPU.IR.Intrinsics.IntrinsicImplementationAttribute"/>
/// helpers written with System.Runtime.Intrinsics, which ILGPU's frontend never reads and which have no PTX or
/// OpenCL implementation. The ops load them only where <c>Device.UsesGpuKernels</c> is false, so they are left
/// out of the GPU kernel catalog (the PTX and OpenCL checks).
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class CpuOnlyKernelsAttribute : Attribute { }

/// <summary>The instruction set the CPU micro-kernels run with in this process.</summary>
public enum SimdPath
{
    /// <summary>Vector512 with FMA: 16 floats a vector.</summary>
    Avx512,
    /// <summary>Vector256 with FMA: 8 floats a vector.</summary>
    Avx2,
    /// <summary>Vector128 (SSE, Arm64 AdvSimd, or software where neither exists): 4 floats a vector.</summary>
    Portable,
}

/// <summary>
/// One vector type's operations. The CPU micro-kernels are generic over a struct implementing this, so RyuJIT
/// compiles one copy per instruction set with every call inlined; <see cref="Simd.Path"/> picks the copy.
/// </summary>
public unsafe interface IVec<TV> where TV : struct
{
    /// <summary>Floats per vector.</summary>
    static abstract int Width { get; }
    static abstract TV Zero { get; }
    static abstract TV Load(float* p);
    static abstract void Store(float* p, TV v);
    static abstract TV Splat(float v);
    /// <summary>a * b + c (fused where the instruction set has FMA).</summary>
    static abstract TV Fma(TV a, TV b, TV c);
    static abstract TV Add(TV a, TV b);
    static abstract TV Sub(TV a, TV b);
    static abstract TV Mul(TV a, TV b);
    /// <summary>a / b, correctly rounded (as the scalar division).</summary>
    static abstract TV Div(TV a, TV b);
    /// <summary>The square root, correctly rounded (as <see cref="MathF.Sqrt"/>).</summary>
    static abstract TV Sqrt(TV a);
    static abstract TV Max(TV a, TV b);
    /// <summary>a where x &gt; 0, else 0 (ReLU's gradient mask).</summary>
    static abstract TV WherePositive(TV x, TV a);
    /// <summary>a where x == m, else 0 (max pooling's gradient mask).</summary>
    static abstract TV WhereEqual(TV x, TV m, TV a);
    /// <summary>Lane-wise: a where x &gt; y, else b (any bit patterns: it selects bits).</summary>
    static abstract TV WhereGreater(TV x, TV y, TV a, TV b);
    /// <summary>The int32 values start, start + 1, ... in the lanes, as bits (stored through a float* into int memory).</summary>
    static abstract TV IntLanes(int start);
    /// <summary>a where the int32 bits of x and y are equal, else 0.</summary>
    static abstract TV WhereSameInt(TV x, TV y, TV a);
}

public unsafe struct V512 : IVec<Vector512<float>>
{
    public static int Width => 16;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Splat(float v) => Vector512.Create(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Div(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sqrt(Vector512<float> a) => Vector512.Sqrt(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> WherePositive(Vector512<float> x, Vector512<float> a) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), a, Vector512<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> WhereEqual(Vector512<float> x, Vector512<float> m, Vector512<float> a) => Vector512.ConditionalSelect(Vector512.Equals(x, m), a, Vector512<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> WhereGreater(Vector512<float> x, Vector512<float> y, Vector512<float> a, Vector512<float> b) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, y), a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> IntLanes(int start) => (Vector512.Create(start) + Vector512<int>.Indices).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> WhereSameInt(Vector512<float> x, Vector512<float> y, Vector512<float> a) => Vector512.ConditionalSelect(Vector512.Equals(x.AsInt32(), y.AsInt32()).AsSingle(), a, Vector512<float>.Zero);
}

public unsafe struct V256 : IVec<Vector256<float>>
{
    public static int Width => 8;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Splat(float v) => Vector256.Create(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Div(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sqrt(Vector256<float> a) => Vector256.Sqrt(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> WherePositive(Vector256<float> x, Vector256<float> a) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), a, Vector256<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> WhereEqual(Vector256<float> x, Vector256<float> m, Vector256<float> a) => Vector256.ConditionalSelect(Vector256.Equals(x, m), a, Vector256<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> WhereGreater(Vector256<float> x, Vector256<float> y, Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, y), a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> IntLanes(int start) => (Vector256.Create(start) + Vector256<int>.Indices).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> WhereSameInt(Vector256<float> x, Vector256<float> y, Vector256<float> a) => Vector256.ConditionalSelect(Vector256.Equals(x.AsInt32(), y.AsInt32()).AsSingle(), a, Vector256<float>.Zero);
}

public unsafe struct V128 : IVec<Vector128<float>>
{
    public static int Width => 4;
    public static Vector128<float> Zero => Vector128<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector128<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Splat(float v) => Vector128.Create(v);
    // Fused where the hardware has FMA (Arm64, x64 with FMA), a multiply and an add otherwise; never a software
    // emulation of fused rounding.
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Sub(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Mul(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Div(Vector128<float> a, Vector128<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Sqrt(Vector128<float> a) => Vector128.Sqrt(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> WherePositive(Vector128<float> x, Vector128<float> a) => Vector128.ConditionalSelect(Vector128.GreaterThan(x, Vector128<float>.Zero), a, Vector128<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> WhereEqual(Vector128<float> x, Vector128<float> m, Vector128<float> a) => Vector128.ConditionalSelect(Vector128.Equals(x, m), a, Vector128<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> WhereGreater(Vector128<float> x, Vector128<float> y, Vector128<float> a, Vector128<float> b) => Vector128.ConditionalSelect(Vector128.GreaterThan(x, y), a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> IntLanes(int start) => (Vector128.Create(start) + Vector128<int>.Indices).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> WhereSameInt(Vector128<float> x, Vector128<float> y, Vector128<float> a) => Vector128.ConditionalSelect(Vector128.Equals(x.AsInt32(), y.AsInt32()).AsSingle(), a, Vector128<float>.Zero);
}

/// <summary>Which vector width this process's CPU micro-kernels use, decided once by what the JIT reports.</summary>
public static class Simd
{
    /// <summary>
    /// AVX-512 where Vector512 is hardware-accelerated; AVX2 where Vector256 is and the CPU has FMA; the portable
    /// Vector128 path otherwise (which is also Arm64's). <c>DOTNET_EnableAVX512=0</c> and <c>DOTNET_EnableAVX2=0</c>
    /// select the narrower paths on a machine that has the wider ones.
    /// </summary>
    public static SimdPath Path { get; } =
        Vector512.IsHardwareAccelerated ? SimdPath.Avx512
        : Vector256.IsHardwareAccelerated && X86.Fma.IsSupported ? SimdPath.Avx2
        : SimdPath.Portable;

    /// <summary>Floats per vector on <see cref="Path"/>.</summary>
    public static int Width => Path switch { SimdPath.Avx512 => 16, SimdPath.Avx2 => 8, _ => 4 };

    /// <summary>The path's name as benchmarks print it.</summary>
    public static string Name => Path switch { SimdPath.Avx512 => "avx512", SimdPath.Avx2 => "avx2", _ => "portable (vector128)" };
}

/// <summary>How the CPU kernels share work: each launch unit takes one contiguous band.</summary>
internal static class CpuBands
{
    /// <summary>Unit <paramref name="u"/> of <paramref name="units"/>: rows [first, end) of <paramref name="rows"/>.</summary>
    internal static void Of(int rows, int u, int units, out int first, out int end)
    {
        first = (int)((long)rows * u / units);
        end = (int)((long)rows * (u + 1) / units);
    }
}
