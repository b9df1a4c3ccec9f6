namespace Xception.Gpu.Studies;

/// <summary>A study setting that cannot be run: <see cref="Setting"/> names it (as <see cref="StudySettings.Stored"/> does), <see cref="Problem"/> says why.</summary>
public sealed class StudySettingException(string setting, string problem) : XceptionException($"{setting} {problem}")
{
    /// <summary>The setting's name.</summary>
    public string Setting { get; } = setting;
    /// <summary>What is wrong with its value, starting with the value.</summary>
    public string Problem { get; } = problem;
}

/// <summary>
/// A study folder that this study cannot continue: it is not a study folder, it holds another study, or one of its
/// settings differs (<see cref="Setting"/>, <see cref="Before"/>, <see cref="Now"/>).
/// </summary>
public sealed class StudyFolderException : XceptionException
{
    /// <param name="folder">the folder</param>
    /// <param name="setting">the first setting that differs, or null when the folder is not a study folder</param>
    /// <param name="before">its value in the folder</param>
    /// <param name="now">its value in this study</param>
    public StudyFolderException(string folder, string? setting, string? before, string? now) : base(Describe(folder, setting, before, now))
    {
        Folder = folder;
        Setting = setting;
        Before = before;
        Now = now;
    }

    /// <param name="folder">the folder</param>
    /// <param name="message">why it cannot be continued (its settings file does not parse)</param>
    public StudyFolderException(string folder, string message) : base(message) => Folder = folder;

    /// <summary>The study folder.</summary>
    public string Folder { get; }
    /// <summary>The first setting that differs ("study" when the folder holds another study), or null when it is no study folder.</summary>
    public string? Setting { get; }
    /// <summary>The folder's value of <see cref="Setting"/>.</summary>
    public string? Before { get; }
    /// <summary>This study's value of <see cref="Setting"/>.</summary>
    public string? Now { get; }

    static string Describe(string folder, string? setting, string? before, string? now) => setting switch
    {
        null => $"'{folder}' is not empty and holds no {StudyRunner.SettingsFile}: it is not a study folder",
        "study" => $"'{folder}' holds the {before} study, not {now}",
        _ => $"'{folder}' holds a study run with {setting} {before}, this study asks {now}",
    };
}
