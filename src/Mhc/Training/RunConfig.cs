using System.Text.Json;
using System.Text.Json.Serialization;
using Mhc.Connections;
using Mhc.Data;
using Mhc.Models;

namespace Mhc.Training;

/// <summary>
/// Everything that defines a training run: the model, the optimisation and the data. Stored as
/// <c>config.json</c> in the run directory; config files use the same snake_case layout and
/// unknown keys are rejected.
/// </summary>
public sealed record RunConfig
{
    /// <summary>Value of <see cref="Task"/> for next-token prediction with a <see cref="GptConfig">GPT</see>.</summary>
    public const string Language = "language";

    /// <summary>Value of <see cref="Task"/> for image classification with a <see cref="VitConfig">ViT</see>.</summary>
    public const string Vision = "vision";

    /// <summary><c>language</c> (section <c>model</c> is used) or <c>vision</c> (section <c>vit</c> is used).</summary>
    public string Task { get; init; } = Language;

    /// <summary>The language model (JSON section <c>model</c>).</summary>
    public GptConfig Model { get; init; } = new();

    /// <summary>The vision model (JSON section <c>vit</c>).</summary>
    public VitConfig Vit { get; init; } = new();

    /// <summary>Optimisation (JSON section <c>training</c>).</summary>
    public TrainingOptions Training { get; init; } = new();

    /// <summary>Data (JSON section <c>data</c>).</summary>
    public DataOptions Data { get; init; } = new();

    /// <summary>snake_case keys, kinds by short name, unknown keys rejected, comments and trailing commas allowed.</summary>
    public static JsonSerializerOptions Json { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
        Converters =
        {
            new NamedEnumConverter<ConnectionKind>("connection kind", k => k.ToName(), ConnectionKindNames.Parse),
            new NamedEnumConverter<ManifoldDefinition>("definition", d => d.ToName(), ManifoldDefinitionNames.Parse),
            new NamedEnumConverter<ResInit>("res_init", r => r.ToName(), ResInitNames.Parse),
            new NamedEnumConverter<ExitHead>("exit_head", h => h.ToName(), ExitHeadNames.Parse),
        },
    };

    /// <summary>The connection options of the active model.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public ConnectionOptions Connection => Task == Vision ? Vit.Connection : Model.Connection;

    /// <summary>This config with the active model's connection options replaced.</summary>
    /// <param name="connection">New connection options.</param>
    public RunConfig WithConnection(ConnectionOptions connection) => Task == Vision
        ? this with { Vit = Vit with { Connection = connection } }
        : this with { Model = Model with { Connection = connection } };

    /// <summary>Validates the task, its model section, training and data.</summary>
    public void Validate()
    {
        if (Task is not (Language or Vision))
            throw new ArgumentException($"task = '{Task}' is unknown: allowed {Language}, {Vision}.", nameof(Task));
        if (Task == Vision)
            (Vit ?? throw new ArgumentException("config section 'vit' is missing.")).Validate();
        else
            (Model ?? throw new ArgumentException("config section 'model' is missing.")).Validate();
        (Training ?? throw new ArgumentException("config section 'training' is missing.")).Validate();
        (Data ?? throw new ArgumentException("config section 'data' is missing.")).Validate(Task);
        if (Task == Language && Data.Path is null && Model.SeqLen < SyntheticLanguage.MinSequenceLength)
            throw new ArgumentException($"model.seq_len = {Model.SeqLen} is out of range for the built-in corpus: allowed >= {SyntheticLanguage.MinSequenceLength} (its longest item has {SyntheticLanguage.MinSequenceLength + 1} characters).", "seq_len");
    }

    /// <summary>Reads and validates a config file; errors name the file and the offending key.</summary>
    /// <param name="path">JSON file.</param>
    public static RunConfig Load(string path)
    {
        if (Directory.Exists(path)) throw new ArgumentException($"config file '{path}' is a directory; expected a JSON file.", nameof(path));
        if (!File.Exists(path)) throw new ArgumentException($"config file '{path}' does not exist.", nameof(path));
        RunConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<RunConfig>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"config file '{path}' is invalid: {JsonMessages.Describe(e)}.", nameof(path), e);
        }
        if (config is null) throw new ArgumentException($"config file '{path}' is empty (null).", nameof(path));
        try
        {
            config.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"config file '{path}': {e.Message}", e.ParamName, e);
        }
        return config;
    }

    /// <summary>
    /// Reads the <c>config.json</c> a run stored in its directory; a damaged one is a <see cref="CheckpointException"/>
    /// naming the file (it is a run file, not the user's input).
    /// </summary>
    /// <param name="runDirectory">Run directory.</param>
    /// <returns>The stored config, or null when the directory holds none.</returns>
    public static RunConfig? Stored(string runDirectory)
    {
        var path = System.IO.Path.Combine(runDirectory, Trainer.ConfigFile);
        if (!File.Exists(path)) return null;
        try
        {
            var config = FromJson(File.ReadAllText(path));
            config.Validate();
            return config;
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"run file '{path}' is damaged ({JsonMessages.Describe(e)}); restore it, or copy the config from a checkpoint's state.json.", e);
        }
        catch (ArgumentException e)
        {
            throw new CheckpointException($"run file '{path}' is damaged: {e.Message}", e);
        }
    }

    /// <summary>The JSON text of this config.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses JSON text (used for the copy stored in checkpoints).</summary>
    /// <param name="json">Text produced by <see cref="ToJson"/>.</param>
    public static RunConfig FromJson(string json) =>
        JsonSerializer.Deserialize<RunConfig>(json, Json) ?? throw new ArgumentException("config JSON is null.", nameof(json));

    /// <summary>An enum written as its short name (<c>"mhc"</c>, <c>"deepseek-v4"</c>); a wrong name is a JSON error naming the allowed ones.</summary>
    sealed class NamedEnumConverter<T>(string what, Func<T, string> toName, Func<string, T> parse) : JsonConverter<T> where T : struct, Enum
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.String)
                throw new JsonException($"{what} must be a string: one of {string.Join(", ", Enum.GetValues<T>().Select(toName))}.");
            try
            {
                return parse(reader.GetString()!);
            }
            catch (ArgumentException e)
            {
                throw new JsonException(e.Message, e);
            }
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(toName(value));
    }
}
