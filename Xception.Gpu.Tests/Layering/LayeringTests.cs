using NetArchTest.Rules;
using Xunit;

namespace Xception.Gpu.Tests.Layering;

/// <summary>
/// The library's folders form layers, each using only those below it (README, "Architecture"). The check reads
/// the compiled assembly (type references in signatures and method bodies, through NetArchTest), so a fully
/// qualified name or a <c>var</c> cannot hide a dependency the way it could from a scan of <c>using</c> lines.
/// </summary>
public class LayeringTests
{
    /// <summary>Bottom to top. The kernels are their own assembly, below all of these.</summary>
    public static readonly string[] Layers =
        ["Runtime", "Ops", "Graph", "Architecture", "IO", "Imaging", "Data", "Training", "Parallel", "Studies", "Inference", "Serving", "Diagnostics"];

    public static TheoryData<string> Each => new(Layers);

    [Theory]
    [MemberData(nameof(Each))]
    public void ALayerUsesNoLayerAboveIt(string layer)
    {
        var above = Layers.SkipWhile(l => l != layer).Skip(1).Select(l => $"Xception.Gpu.{l}").ToArray();
        if (above.Length == 0) return;
        var result = Types.InAssembly(typeof(XceptionException).Assembly)
            .That().ResideInNamespace($"Xception.Gpu.{layer}")
            .ShouldNot().HaveDependencyOnAny(above)
            .GetResult();
        Assert.True(result.IsSuccessful,
            $"Xception.Gpu.{layer} uses a layer above it: {string.Join(", ", result.FailingTypeNames ?? [])}");
    }

    /// <summary>Every type of the library lives in one of the layers (a new folder must be placed in the order).</summary>
    [Fact]
    public void EveryNamespaceIsALayer()
    {
        var namespaces = typeof(XceptionException).Assembly.GetTypes()
            .Select(t => t.Namespace ?? "")
            .Where(n => !n.StartsWith("Microsoft.") && !n.StartsWith("System.") && n.Length > 0)
            .Distinct().ToList();
        var unplaced = namespaces.Where(n => !Layers.Any(l => n == $"Xception.Gpu.{l}" || n.StartsWith($"Xception.Gpu.{l}."))).ToList();
        Assert.True(unplaced.Count == 0, $"namespaces outside the layers: {string.Join(", ", unplaced)}");
        Assert.True(namespaces.Count >= Layers.Length, "the assembly has fewer namespaces than layers: the check reads nothing");
    }

    /// <summary>
    /// The library speaks in its own terms: no string in its code names a command-line option (`--batch`),
    /// since a library user has no flags; the command adds its option's name where it catches the error.
    /// Reads the sources (comments aside), so it needs the repository beside the test binaries.
    /// </summary>
    [Fact]
    public void NoLibraryMessageNamesACommandLineFlag()
    {
        string root;
        try { root = Keras.KerasReference.RepoRoot(); }
        catch (InvalidOperationException) { Assert.Skip("the library's sources are not beside the test binaries"); return; }
        var library = Path.Combine(root, "Xception.Gpu");
        var flag = new System.Text.RegularExpressions.Regex("\"[^\"]*(?<![\\w-])--[a-z][a-z-]+");
        var found = new List<string>();
        int files = 0;
        foreach (var file in Directory.EnumerateFiles(library, "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") || file.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}")) continue;
            files++;
            var lines = File.ReadAllLines(file);
            for (int i = 0; i < lines.Length; i++)
            {
                var code = lines[i].TrimStart();
                if (code.StartsWith("//")) continue;
                if (flag.IsMatch(code)) found.Add($"{Path.GetRelativePath(root, file)}:{i + 1}: {code}");
            }
        }
        Assert.True(files > 50, $"read only {files} source files");
        Assert.True(found.Count == 0, "library strings that name a flag:\n" + string.Join("\n", found));
    }
}
