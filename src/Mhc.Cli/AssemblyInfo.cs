using System.Runtime.CompilerServices;

// Tests check the tool's internals (report figures, benchmark shapes); the BenchmarkDotNet project times the same shapes.
[assembly: InternalsVisibleTo("Mhc.Tests")]
[assembly: InternalsVisibleTo("Mhc.Bench")]
