using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xception.Gpu.Tests.Inference;
using Xception.Gpu.Tests.IO;
using Xception.Gpu.Tests.Keras;
using Xunit;

namespace Xception.Gpu.Tests.Packaging;

/// <summary>
/// The packages as a user gets them: `dotnet pack -c Release -o DIR` on a copy of the source tree (the tracked
/// and untracked files a fresh clone plus local changes holds: no bin, obj or node_modules), then the tool
/// installed from DIR into a temporary folder and run, and a new console project that references the library
/// package from DIR and runs the README's library example as it stands. Needs the .NET SDK: skipped, visibly,
/// without one (the published test executable on a GPU machine); XCEPTION_REQUIRE_PACKAGING=1 (CI sets it)
/// turns the skip into a failure.
/// </summary>
public class PackageTests(PackedRepo repo) : IClassFixture<PackedRepo>
{
    static readonly string[] Packages = ["Xception.Gpu", "Xception.Gpu.Kernels", "Xception.Gpu.Tool"];

    [Fact]
    public void PackMakesTheLibraryTheKernelsAndTheToolAndNothingElse()
    {
        var p = repo.Pack();
        var names = Directory.GetFiles(p.Dir).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(Packages.SelectMany(id => new[] { $"{id}.{p.Version}.nupkg", $"{id}.{p.Version}.snupkg" }).Order(), names);

        // The library: its assembly and XML docs, the README's library section, MIT, the kernels as a dependency.
        using (var lib = ZipFile.OpenRead(p.Package("Xception.Gpu")))
        {
            Assert.NotNull(lib.GetEntry("lib/net10.0/Xception.Gpu.dll"));
            Assert.NotNull(lib.GetEntry("lib/net10.0/Xception.Gpu.xml"));
            Assert.Null(lib.GetEntry("lib/net10.0/Xception.Gpu.pdb")); // in the symbols package
            var readme = Text(lib, "README.md");
            Assert.StartsWith("# Xception.Gpu\n", readme);
            Assert.Contains(PackedRepo.ReadmeSection("Xception.Gpu"), readme);
            Assert.Contains("XceptionModel.Load(", readme);
            Assert.Contains("## Fine-tuning from C#", readme);
            var meta = Nuspec(lib);
            Assert.Equal("MIT", Single(meta, "license").Value);
            Assert.Equal("expression", Single(meta, "license").Attribute("type")?.Value);
            Assert.Equal("README.md", Single(meta, "readme").Value);
            Assert.NotNull(Single(meta, "repository"));
            var deps = Dependencies(meta);
            Assert.Equal(p.Version, deps["Xception.Gpu.Kernels"]);
            Assert.Contains("PureHDF", deps.Keys);
            Assert.Contains("StbImageSharp", deps.Keys);
            Assert.True(Reproducible(lib, "lib/net10.0/Xception.Gpu.dll"), "Xception.Gpu.dll is not a deterministic build");
        }
        using (var kernels = ZipFile.OpenRead(p.Package("Xception.Gpu.Kernels")))
        {
            Assert.NotNull(kernels.GetEntry("lib/net10.0/Xception.Gpu.Kernels.dll"));
            Assert.Contains(PackedRepo.ReadmeSection("Xception.Gpu.Kernels"), Text(kernels, "README.md"));
            var deps = Dependencies(Nuspec(kernels));
            Assert.Equal("1.5.3", deps["ILGPU"]);
            Assert.Equal("1.5.3", deps["ILGPU.Algorithms"]);
        }

        // Symbols: every C# source of the library and the kernels is embedded in their PDBs, under the
        // machine-independent root /_/ of a ContinuousIntegrationBuild.
        foreach (var (id, file) in new[] { ("Xception.Gpu", "Xception.Gpu.pdb"), ("Xception.Gpu.Kernels", "Xception.Gpu.Kernels.pdb") })
        {
            using var symbols = ZipFile.OpenRead(p.Symbols(id));
            var (documents, embedded) = EmbeddedSources(symbols, $"lib/net10.0/{file}");
            Assert.True(documents.Count > 10, $"{file}: only {documents.Count} documents");
            Assert.Equal(documents.Count, embedded);
            Assert.All(documents, d => Assert.StartsWith("/_/", d));
        }

        // The tool: a DotnetTool package with the command `xception` and the natives of the common platforms.
        using var tool = ZipFile.OpenRead(p.Package("Xception.Gpu.Tool"));
        Assert.Equal("DotnetTool", Single(Nuspec(tool), "packageType").Attribute("name")?.Value);
        var settings = XDocument.Parse(Text(tool, "tools/net10.0/any/DotnetToolSettings.xml"));
        Assert.Equal("xception", settings.Descendants("Command").Single().Attribute("Name")?.Value);
        foreach (var f in new[] { "xception.dll", "Xception.Gpu.dll", "Xception.Gpu.Kernels.dll", "ILGPU.dll",
                     "runtimes/linux-x64/native/libSkiaSharp.so", "runtimes/win-x64/native/libSkiaSharp.dll" })
            Assert.True(tool.GetEntry($"tools/net10.0/any/{f}") is not null, $"the tool package lacks {f}");
        Assert.Contains(PackedRepo.ReadmeSection("Xception.Gpu.Tool"), Text(tool, "README.md"));
    }

    [Fact]
    public void TheInstalledToolRunsItsCommands()
    {
        var p = repo.Pack();
        var xception = repo.Tool();

        var (code, output) = repo.Run(xception, ["summary"], p.Root);
        Assert.True(code == 0, output);
        Assert.Contains("Total params: 22,910,480", output);
        Assert.Contains("Trainable params: 22,855,952", output);
        Assert.Contains("Non-trainable params: 54,528", output);

        (code, output) = repo.Run(xception, ["devices"], p.Root);
        Assert.True(code == 0, output);
        Assert.Contains("cpu:0", output);

        // train wrote curves.png: SkiaSharp's native library loaded from the tool's folder.
        var weights = repo.Checkpoint();
        Assert.True(File.Exists(Path.Combine(p.Root, "run", "curves.png")), "the installed tool's train wrote no curves.png");

        var image = InferenceApiTests.WritePng(p.Files, "picture.png", 45, 38);
        (code, output) = repo.Run(xception, ["predict", "--weights", weights, "--device", "cpu", "--top", "3", image], p.Root);
        Assert.True(code == 0, output);
        Assert.Contains("picture.png", output);
        Assert.Equal(3, Regex.Matches(output, @"^\s+\d+\.\d+\s?%\s+\d\s+class \d$", RegexOptions.Multiline).Count);

        // The other commands, each on something small, each writing what it should.
        string Dir(string name) => Path.Combine(p.Root, name);
        foreach (var (args, wrote) in new (string[], string)[]
        {
            (["features", "--weights", weights, "--device", "cpu", "--output", Dir("features.npy"), image], Dir("features.npy")),
            (["explain", "--weights", weights, "--device", "cpu", "--output", Dir("cam"), image], Path.Combine(Dir("cam"), "picture.gradcam.png")),
            (["eval", "--weights", weights, "--data", "synthetic:16", "--device", "cpu"], ""),
            (["bench", "--op", "pool", "--device", "cpu", "--batch", "1", "--image-size", "71"], ""),
            (["kernels", "--ptx", Dir("ptx")], Dir("ptx")),
        })
        {
            (code, output) = repo.Run(xception, args, p.Root);
            Assert.True(code == 0, output);
            Assert.True(wrote == "" || File.Exists(wrote) || Directory.Exists(wrote), $"{args[0]} wrote no {wrote}:\n{output}");
        }
    }

    [Fact]
    public async Task TheInstalledToolServes()
    {
        var p = repo.Pack();
        var xception = repo.Tool();
        var weights = repo.Checkpoint();
        using var serve = Serving.ServeProcess.Start(repo.StartInfo(xception,
            ["serve", "--weights", weights, "--device", "cpu", "--urls", "http://127.0.0.1:0", "--no-features"], p.Root));
        await serve.Ready.WaitAsync(TimeSpan.FromMinutes(3));
        using var client = new HttpClient { BaseAddress = new Uri(serve.Url) };
        Assert.Equal(System.Net.HttpStatusCode.OK, (await client.GetAsync("/v2/health/ready")).StatusCode);
        Assert.Contains("xception-model", await client.GetStringAsync("/"));
        var image = File.ReadAllBytes(InferenceApiTests.WritePng(p.Files, "served.png", 45, 38));
        using var r = await client.PostAsync("/predictions/xception", new ByteArrayContent(image));
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, body);
        Assert.Equal(5, System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("predictions").GetArrayLength());
        serve.Terminate();
        Assert.True(serve.WaitForExit(TimeSpan.FromMinutes(1)), "the installed tool's server did not stop within a minute of SIGTERM");
        Assert.True(serve.Process.ExitCode == 0, serve.Output);
    }

    [Fact]
    public void TheReadmeLibraryExampleRunsAgainstThePackage()
    {
        var p = repo.Pack();
        var weights = repo.Checkpoint();
        var images = new[] { InferenceApiTests.WritePng(p.Files, "a.png", 50, 40, 1), InferenceApiTests.WritePng(p.Files, "b.png", 33, 61, 2) };

        // The README's steps: a new console project, the package from DIR, the example as Program.cs.
        var app = Path.Combine(p.Root, "app");
        var (code, output) = repo.Dotnet(["new", "console", "--no-restore", "-o", app], p.Root);
        Assert.True(code == 0, output);
        (code, output) = repo.Dotnet(["add", app, "package", "Xception.Gpu", "--version", p.Version, "--source", p.Dir], p.Root);
        Assert.True(code == 0, output);
        File.WriteAllText(Path.Combine(app, "Program.cs"), PackedRepo.ReadmeLibraryExample());

        (code, output) = repo.Dotnet(["run", "--project", app, "-c", "Release", "--", weights, .. images], p.Root);
        Assert.True(code == 0, output);
        Assert.Equal(5, Regex.Matches(output, @"^class \d +\d+(\.\d)?\s?%$", RegexOptions.Multiline).Count);
        Assert.Contains("2 images; top logit of the first: ", output);
    }

    static string Text(ZipArchive zip, string entry)
    {
        var e = zip.GetEntry(entry) ?? throw new Xunit.Sdk.XunitException($"the package has no {entry}");
        using var r = new StreamReader(e.Open());
        return r.ReadToEnd().Replace("\r\n", "\n");
    }

    static XElement Nuspec(ZipArchive zip) =>
        XDocument.Parse(Text(zip, zip.Entries.Single(e => e.FullName.EndsWith(".nuspec") && !e.FullName.Contains('/')).FullName)).Root!;

    static XElement Single(XElement nuspec, string name) => nuspec.Descendants().Single(e => e.Name.LocalName == name);

    static Dictionary<string, string> Dependencies(XElement nuspec) =>
        nuspec.Descendants().Where(e => e.Name.LocalName == "dependency")
            .ToDictionary(e => e.Attribute("id")!.Value, e => e.Attribute("version")!.Value);

    /// <summary>Whether the assembly carries the Reproducible debug directory entry of a deterministic build.</summary>
    static bool Reproducible(ZipArchive zip, string entry)
    {
        using var ms = new MemoryStream();
        using (var s = zip.GetEntry(entry)!.Open()) s.CopyTo(ms);
        ms.Position = 0;
        using var pe = new PEReader(ms);
        return pe.ReadDebugDirectory().Any(d => d.Type == DebugDirectoryEntryType.Reproducible);
    }

    /// <summary>The PDB's C# documents and how many of them carry their source (embedded-source debug information).</summary>
    static (List<string> Documents, int Embedded) EmbeddedSources(ZipArchive zip, string entry)
    {
        var embeddedSource = new Guid("0E8A571B-6926-466E-B4AD-8AB04611F5FE");
        using var ms = new MemoryStream();
        using (var s = (zip.GetEntry(entry) ?? throw new Xunit.Sdk.XunitException($"the symbols package has no {entry}")).Open()) s.CopyTo(ms);
        ms.Position = 0;
        using var provider = MetadataReaderProvider.FromPortablePdbStream(ms);
        var pdb = provider.GetMetadataReader();
        var documents = pdb.Documents.Where(h => pdb.GetString(pdb.GetDocument(h).Name).EndsWith(".cs")).ToList();
        int embedded = documents.Count(h => pdb.GetCustomDebugInformation(h)
            .Any(c => pdb.GetGuid(pdb.GetCustomDebugInformation(c).Kind) == embeddedSource));
        return (documents.Select(h => pdb.GetString(pdb.GetDocument(h).Name)).ToList(), embedded);
    }
}

/// <summary>
/// One `dotnet pack` of the repository for the tests of <see cref="PackageTests"/>, the tool installed from it
/// and a checkpoint that tool trained, each made once, when first needed, in a temporary folder deleted
/// afterwards. The version is unique per run (0.0.0-ci.TIME.PID), so no package cached from an earlier run can
/// stand in for this one; that version's folders in the NuGet cache are removed afterwards.
/// </summary>
public sealed class PackedRepo : IDisposable
{
    internal sealed record Packed(string Root, string Dir, string Version, TempDir Files)
    {
        public string Package(string id) => Path.Combine(Dir, $"{id}.{Version}.nupkg");
        public string Symbols(string id) => Path.Combine(Dir, $"{id}.{Version}.snupkg");
    }

    readonly TempDir files = new();
    readonly string version = $"0.0.0-ci.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
    readonly Lazy<(string? Dotnet, string Reason)> sdk = new(FindSdk);
    readonly Lazy<Packed> packed;
    readonly Lazy<string> tool, checkpoint;

    public PackedRepo()
    {
        packed = new(DoPack);
        tool = new(DoInstallTool);
        checkpoint = new(DoTrain);
    }

    /// <summary>The packages (packing on first use); skips, or fails under XCEPTION_REQUIRE_PACKAGING=1, without an SDK.</summary>
    internal Packed Pack()
    {
        var (dotnet, reason) = sdk.Value;
        if (dotnet is null)
        {
            if (Environment.GetEnvironmentVariable("XCEPTION_REQUIRE_PACKAGING") == "1")
                Assert.Fail($"XCEPTION_REQUIRE_PACKAGING=1 but {reason}");
            Assert.Skip(reason);
        }
        return packed.Value;
    }

    /// <summary>The installed tool's command.</summary>
    public string Tool() => tool.Value;

    /// <summary>An xception-mini checkpoint (32 x 32, 10 classes) that the installed tool trained for one step.</summary>
    public string Checkpoint() => checkpoint.Value;

    Packed DoPack()
    {
        var root = files.Path;
        var src = Path.Combine(root, "src");
        CopySources(KerasReference.RepoRoot(), src);
        var dir = Path.Combine(root, "packages");
        // ContinuousIntegrationBuild as CI would set it (CI=true): deterministic paths in the PDBs.
        var (code, output) = Dotnet(["pack", "-c", "Release", "-o", dir, $"-p:Version={version}",
            "-p:ContinuousIntegrationBuild=true", "--disable-build-servers"], src, TimeSpan.FromMinutes(20));
        Assert.True(code == 0, $"dotnet pack failed:\n{output}");
        // Where the examples' own build files stop MSBuild's search for the repository's Directory.Build.*.
        File.WriteAllText(Path.Combine(root, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(root, "Directory.Build.targets"), "<Project />");
        return new Packed(root, dir, version, files);
    }

    string DoInstallTool()
    {
        var p = packed.Value;
        var toolPath = Path.Combine(p.Root, "tool");
        var (code, output) = Dotnet(["tool", "install", "--tool-path", toolPath, "--add-source", p.Dir,
            "Xception.Gpu.Tool", "--version", p.Version], p.Root);
        Assert.True(code == 0, $"dotnet tool install failed:\n{output}");
        var command = Path.Combine(toolPath, OperatingSystem.IsWindows() ? "xception.exe" : "xception");
        Assert.True(File.Exists(command), $"no {command} after the install:\n{output}");
        return command;
    }

    string DoTrain()
    {
        var p = packed.Value;
        var weights = Path.Combine(p.Root, "mini.safetensors");
        var (code, output) = Run(tool.Value, ["train", "--data", "synthetic:40", "--batch", "8", "--steps", "1",
            "--val-split", "0", "--device", "cpu", "--checkpoint-dir", Path.Combine(p.Root, "run"), "--save", weights], p.Root);
        Assert.True(code == 0, $"the installed tool's train failed:\n{output}");
        return weights;
    }

    /// <summary>The README's section for a package, between its package:ID comment lines.</summary>
    public static string ReadmeSection(string id)
    {
        var readme = File.ReadAllText(Path.Combine(KerasReference.RepoRoot(), "README.md")).Replace("\r\n", "\n");
        string begin = $"<!-- package:{id} -->", end = $"<!-- /package:{id} -->";
        int a = readme.IndexOf(begin, StringComparison.Ordinal), b = readme.IndexOf(end, StringComparison.Ordinal);
        Assert.True(a >= 0 && b > a, $"README.md has no section {begin} ... {end}");
        return readme[(a + begin.Length)..b].Trim();
    }

    /// <summary>The first C# block of the README's library section: the whole example program.</summary>
    public static string ReadmeLibraryExample()
    {
        var m = Regex.Match(ReadmeSection("Xception.Gpu"), @"```csharp\n(.*?)```", RegexOptions.Singleline);
        Assert.True(m.Success, "the README's library section has no csharp block");
        return m.Groups[1].Value;
    }

    /// <summary>How <see cref="Run"/> starts a program (for a test that talks to it while it runs).</summary>
    public System.Diagnostics.ProcessStartInfo StartInfo(string program, string[] args, string workDir)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(program, args)
        {
            WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)
                     || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase) || k == "DOTNET_HOST_PATH").ToList())
            psi.Environment.Remove(key);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        if (sdk.Value.Dotnet is { } dotnet) psi.Environment["DOTNET_ROOT"] = Path.GetDirectoryName(dotnet);
        return psi;
    }

    public (int Code, string Output) Dotnet(string[] args, string workDir, TimeSpan? timeout = null) =>
        Run(sdk.Value.Dotnet!, args, workDir, timeout);

    /// <summary>
    /// Runs a program with stdout and stderr captured together. MSBuild's variables from the `dotnet test` that
    /// runs this are removed (a nested build must not reuse the outer one's settings); DOTNET_ROOT points at the
    /// SDK's folder so that the tool's app host finds the runtime wherever the SDK lives.
    /// </summary>
    public (int Code, string Output) Run(string program, string[] args, string workDir, TimeSpan? timeout = null)
    {
        using var proc = System.Diagnostics.Process.Start(StartInfo(program, args, workDir))!;
        var output = new System.Text.StringBuilder();
        proc.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        proc.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        proc.BeginOutputReadLine();
        proc.BeginErrorReadLine();
        var limit = timeout ?? TimeSpan.FromMinutes(5);
        if (!proc.WaitForExit(limit))
        {
            proc.Kill(entireProcessTree: true);
            proc.WaitForExit();
            lock (output) return (-1, $"{Path.GetFileName(program)} {string.Join(' ', args)}: no exit within {limit}\n{output}");
        }
        proc.WaitForExit(); // the asynchronous readers have finished
        lock (output) return (proc.ExitCode, $"{Path.GetFileName(program)} {string.Join(' ', args)}\n{output}");
    }

    /// <summary>The dotnet with a .NET 10 SDK: DOTNET_HOST_PATH (set by the dotnet that runs the tests), else on PATH.</summary>
    static (string?, string) FindSdk()
    {
        if (!TryRepoRoot())
            return (null, "no source tree above the test assembly (a published test folder): packaging needs the repository");
        var exe = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host) candidates.Add(host);
        foreach (var d in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            candidates.Add(Path.Combine(d, exe));
        foreach (var c in candidates.Where(File.Exists))
        {
            var path = new FileInfo(c).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(c);
            var sdks = Path.Combine(Path.GetDirectoryName(path)!, "sdk");
            if (Directory.Exists(sdks) && Directory.GetDirectories(sdks, "10.*").Length > 0) return (path, "");
        }
        return (null, "no .NET 10 SDK found (DOTNET_HOST_PATH, PATH): packaging needs `dotnet pack`");
    }

    static bool TryRepoRoot()
    {
        try { KerasReference.RepoRoot(); return true; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>
    /// Copies what a clone with the local changes holds: git's tracked and untracked-but-not-ignored files, or,
    /// without git, every file outside bin, obj, node_modules and the other ignored folders.
    /// </summary>
    static void CopySources(string from, string to)
    {
        IEnumerable<string> list;
        var psi = new System.Diagnostics.ProcessStartInfo("git", ["-C", from, "ls-files", "-z", "-co", "--exclude-standard"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        try
        {
            using var git = System.Diagnostics.Process.Start(psi)!;
            var text = git.StandardOutput.ReadToEnd();
            git.StandardError.ReadToEnd();
            git.WaitForExit();
            list = git.ExitCode == 0 ? text.Split('\0', StringSplitOptions.RemoveEmptyEntries) : Walk(from);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            list = Walk(from);
        }
        foreach (var rel in list)
        {
            var source = Path.Combine(from, rel);
            if (!File.Exists(source)) continue; // deleted but still tracked
            var target = Path.Combine(to, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(source, target);
        }
    }

    static IEnumerable<string> Walk(string root)
    {
        var skip = new HashSet<string> { "bin", "obj", "node_modules", ".git", ".vs", "runs", "TestResults" };
        return Directory.EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select(f => Path.GetRelativePath(root, f))
            .Where(rel => !rel.Split(Path.DirectorySeparatorChar).Any(skip.Contains));
    }

    public void Dispose()
    {
        files.Dispose();
        // The unique version's copies in the NuGet cache (the console project's restore put them there).
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } c ? c
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (var id in new[] { "xception.gpu", "xception.gpu.kernels", "xception.gpu.tool" })
        {
            try
            {
                var d = Path.Combine(cache, id, version);
                if (Directory.Exists(d)) Directory.Delete(d, recursive: true);
                var parent = Path.Combine(cache, id);
                if (Directory.Exists(parent) && !Directory.EnumerateFileSystemEntries(parent).Any()) Directory.Delete(parent);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }
}
