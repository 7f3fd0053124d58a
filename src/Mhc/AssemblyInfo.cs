using System.Runtime.CompilerServices;

// The fused kernels are internal; tests check them against the reference path and benchmarks time them.
[assembly: InternalsVisibleTo("Mhc.Tests")]
[assembly: InternalsVisibleTo("Mhc.Bench")]
// The command-line tool shares the library's internal file helpers (atomic writes) instead of keeping copies.
[assembly: InternalsVisibleTo("mhc")]
