namespace Mhc.Tests;

/// <summary>Locations the tests use: the repository, its data folder, and scratch folders.</summary>
static class TestPaths
{
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>A file of the repository's <c>data/</c> folder (committed with it: the tests need nothing outside).</summary>
    public static string Data(string name) => Path.Combine(RepositoryRoot, "data", name);

    /// <summary>A new empty folder, deleted when disposed.</summary>
    public static TempDirectory Temp() => new();

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Mhc.slnx"))) return dir.FullName;
        throw new InvalidOperationException("repository root (Mhc.slnx) not found above " + AppContext.BaseDirectory);
    }
}

sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("mhc-tests-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Left for the OS to clean; never fail a test over it.
        }
    }
}
