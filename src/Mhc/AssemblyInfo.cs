using System.Runtime.CompilerServices;

// The fused kernels are internal; tests check them against the reference path and benchmarks time them.
[assembly: InternalsVisibleTo("Mhc.Tests")]
[assembly: InternalsVisibleTo("Mhc.Bench")]
