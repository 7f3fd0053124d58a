// TorchSharp keeps native global state (RNG, thread pool): every test runs in one sequential collection.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
