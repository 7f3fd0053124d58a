using Mhc.Connections;
using Mhc.Training;

namespace Mhc.Tests;

public class RunConfigTests
{
    [Fact]
    public void Round_trips_through_json_with_snake_case_keys()
    {
        var config = new RunConfig
        {
            Model = new() { DModel = 64, Layers = 3, Heads = 2, SeqLen = 32, Dropout = 0.1, TieEmbeddings = false, Connection = new() { Kind = ConnectionKind.HyperDynamic, Streams = 2, UseTanh = false } },
            Training = new() { Steps = 7, LearningRate = 1e-4, Schedule = "step", SkipNonFinite = true },
            Data = new() { Path = "corpus.txt", Tokenizer = "byte" },
        };
        var json = config.ToJson();
        foreach (var key in new[] { "\"d_model\": 64", "\"seq_len\": 32", "\"tie_embeddings\": false", "\"kind\": \"hc\"", "\"use_tanh\": false", "\"learning_rate\"", "\"skip_non_finite\": true" })
            Assert.Contains(key, json, StringComparison.Ordinal);
        Assert.Equal(config, RunConfig.FromJson(json) with { Model = RunConfig.FromJson(json).Model, Training = RunConfig.FromJson(json).Training });
        Assert.Equal(config.Model, RunConfig.FromJson(json).Model);
        Assert.Equal(config.Training, RunConfig.FromJson(json).Training);
        Assert.Equal(config.Data, RunConfig.FromJson(json).Data);
    }

    [Fact]
    public void Load_rejects_unknown_keys_bad_values_and_bad_json_naming_the_file()
    {
        using var temp = TestPaths.Temp();
        string Error(string json)
        {
            var file = temp.File("config.json");
            File.WriteAllText(file, json);
            var message = Assert.Throws<ArgumentException>(() => RunConfig.Load(file)).Message;
            Assert.Contains(file, message, StringComparison.Ordinal);
            return message;
        }
        Assert.Contains("is invalid: unknown key 'd_modle' (allowed: vocab_size, d_model, layers, heads, seq_len, mlp_hidden, dropout, tie_embeddings, connection) at 'model.d_modle' (line 1)", Error("""{ "model": { "d_modle": 64 } }"""), StringComparison.Ordinal);
        Assert.Contains("is invalid: expected a whole number at 'training.steps' (line 2)", Error("{\n \"training\": { \"steps\": \"many\" } }"), StringComparison.Ordinal);
        Assert.Contains("model.d_model = 30 is out of range: allowed a multiple of heads = 4", Error("""{ "model": { "d_model": 30 } }"""), StringComparison.Ordinal);
        Assert.Contains("training.steps = -5", Error("""{ "training": { "steps": -5 } }"""), StringComparison.Ordinal);
        Assert.Contains("connection.streams = 0", Error("""{ "model": { "connection": { "kind": "mhc", "streams": 0 } } }"""), StringComparison.Ordinal);
        Assert.Contains("connection = 'mhcc' is unknown", Error("""{ "model": { "connection": { "kind": "mhcc" } } }"""), StringComparison.Ordinal);
        Assert.Contains("invalid", Error("""{ "model": """), StringComparison.Ordinal);
        Assert.Contains("does not exist", Assert.Throws<ArgumentException>(() => RunConfig.Load(temp.File("nope.json"))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Accepts_comments_trailing_commas_and_partial_sections()
    {
        using var temp = TestPaths.Temp();
        var file = temp.File("c.json");
        File.WriteAllText(file, """
            // a small HC run
            { "model": { "layers": 2, "connection": { "kind": "hc-static", "streams": 2 }, }, }
            """);
        var config = RunConfig.Load(file);
        Assert.Equal(2, config.Model.Layers);
        Assert.Equal(ConnectionKind.HyperStatic, config.Model.Connection.Kind);
        Assert.Equal(new TrainingOptions(), config.Training);
    }
}
