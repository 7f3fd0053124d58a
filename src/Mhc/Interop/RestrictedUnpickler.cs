using System.Buffers.Binary;
using System.Text;

namespace Mhc.Interop;

/// <summary>
/// The part of Python's pickle machine that <c>torch.save(model.state_dict())</c> uses, with PyTorch's
/// <c>weights_only=True</c> rule: the only globals a file may name are the tensor rebuilders, the storage types and
/// <c>collections.OrderedDict</c>; anything else (a class, a function such as <c>os.system</c>) stops the load before it
/// is used. Nothing is ever executed: REDUCE builds one of our own records. Written here because the unpickler of
/// TorchSharp.PyBridge (Razorvine.Pickle) accepts any global.
/// </summary>
sealed class RestrictedUnpickler : IDisposable
{
    /// <summary>A global the file named, from the allow-list.</summary>
    public sealed record Global(string Module, string Name);

    /// <summary>A tensor's storage, as the persistent id of <c>torch.save</c> names it: type, record key, element count.</summary>
    public sealed record StorageRef(string StorageType, string Key, long Elements);

    /// <summary>A tensor: a view of <paramref name="Storage"/> at <paramref name="Offset"/> with a size and stride.</summary>
    public sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride);

    static readonly HashSet<string> Storages =
        ["FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage"];

    static readonly object Mark = new();

    readonly BinaryReader input;
    readonly string source;
    readonly List<object?> stack = [];
    readonly Dictionary<long, object?> memo = [];

    RestrictedUnpickler(Stream stream, string source)
    {
        input = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        this.source = source;
    }

    /// <summary>The object the pickle in <paramref name="stream"/> describes; <paramref name="source"/> names it in errors.</summary>
    public static object? Load(Stream stream, string source)
    {
        using var unpickler = new RestrictedUnpickler(stream, source);
        return unpickler.Run();
    }

    public void Dispose() => input.Dispose();

    WeightFileException Refuse(string problem) => new($"'{source}' is not a state dict PyTorch would load with weights_only=True: {problem}.");

    object? Run()
    {
        while (true)
        {
            int code;
            try
            {
                code = input.ReadByte();
            }
            catch (EndOfStreamException)
            {
                throw Refuse("the pickle ends without STOP");
            }
            try
            {
                if (Step((byte)code)) return Pop();
            }
            catch (EndOfStreamException)
            {
                throw Refuse($"the pickle ends inside opcode 0x{code:x2}");
            }
        }
    }

    /// <summary>Runs one opcode; true at STOP.</summary>
    bool Step(byte code)
    {
        switch (code)
        {
            case 0x80: input.ReadByte(); break;                                          // PROTO
            case 0x95: input.ReadInt64(); break;                                          // FRAME (protocol 4)
            case (byte)'.': return true;                                                  // STOP
            case (byte)'(': stack.Add(Mark); break;                                       // MARK
            case (byte)'}': stack.Add(new Dictionary<string, object?>()); break;          // EMPTY_DICT
            case (byte)']': stack.Add(new List<object?>()); break;                        // EMPTY_LIST
            case (byte)')': stack.Add(Array.Empty<object?>()); break;                     // EMPTY_TUPLE
            case (byte)'t': stack.Add(PopToMark().ToArray()); break;                      // TUPLE
            case 0x85: stack.Add(new[] { Pop() }); break;                                 // TUPLE1
            case 0x86: { var b = Pop(); var a = Pop(); stack.Add(new[] { a, b }); break; } // TUPLE2
            case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); stack.Add(new[] { a, b, c }); break; } // TUPLE3
            case (byte)'l': stack.Add(PopToMark()); break;                                // LIST
            case (byte)'a': { var item = Pop(); As<List<object?>>(Top(), "APPEND").Add(item); break; }
            case (byte)'e': { var items = PopToMark(); As<List<object?>>(Top(), "APPENDS").AddRange(items); break; }
            case (byte)'s': { var value = Pop(); var key = Pop(); SetItem(Top(), key, value); break; }          // SETITEM
            case (byte)'u':                                                               // SETITEMS
            {
                var items = PopToMark();
                if (items.Count % 2 != 0) throw Refuse("SETITEMS with an odd number of items");
                for (var i = 0; i < items.Count; i += 2) SetItem(Top(), items[i], items[i + 1]);
                break;
            }
            case (byte)'q': memo[input.ReadByte()] = Top(); break;                        // BINPUT
            case (byte)'r': memo[input.ReadUInt32()] = Top(); break;                      // LONG_BINPUT
            case 0x94: memo[memo.Count] = Top(); break;                                   // MEMOIZE
            case (byte)'h': stack.Add(Memo(input.ReadByte())); break;                     // BINGET
            case (byte)'j': stack.Add(Memo(input.ReadUInt32())); break;                   // LONG_BINGET
            case (byte)'X': stack.Add(Text(input.ReadUInt32())); break;                   // BINUNICODE
            case 0x8c: stack.Add(Text(input.ReadByte())); break;                          // SHORT_BINUNICODE
            case (byte)'J': stack.Add((long)input.ReadInt32()); break;                     // BININT
            case (byte)'K': stack.Add((long)input.ReadByte()); break;                     // BININT1
            case (byte)'M': stack.Add((long)input.ReadUInt16()); break;                   // BININT2
            case 0x8a: stack.Add(Long(input.ReadByte())); break;                          // LONG1
            case (byte)'N': stack.Add(null); break;                                       // NONE
            case 0x88: stack.Add(true); break;                                            // NEWTRUE
            case 0x89: stack.Add(false); break;                                           // NEWFALSE
            case (byte)'G': stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8))); break;    // BINFLOAT
            case (byte)'c': stack.Add(Allowed(Line(), Line())); break;                   // GLOBAL
            case 0x93: { var name = Pop(); var module = Pop(); stack.Add(Allowed(module as string, name as string)); break; } // STACK_GLOBAL
            case (byte)'Q': stack.Add(Persistent(Pop())); break;                          // BINPERSID
            case (byte)'R': { var args = Pop(); var callable = Pop(); stack.Add(Reduce(callable, args)); break; }
            case (byte)'b':                                                               // BUILD: an OrderedDict's attributes (_metadata)
            {
                Pop();
                if (Top() is not Dictionary<string, object?>) throw Refuse("BUILD on something other than a dict");
                break;
            }
            default: throw Refuse($"opcode 0x{code:x2} is not one a state dict uses");
        }
        return false;
    }

    object? Pop()
    {
        if (stack.Count == 0 || ReferenceEquals(stack[^1], Mark)) throw Refuse("an opcode reads past the start of the stack");
        var top = stack[^1];
        stack.RemoveAt(stack.Count - 1);
        return top;
    }

    object? Top() => stack.Count == 0 ? throw Refuse("an opcode reads an empty stack") : stack[^1];

    List<object?> PopToMark()
    {
        var mark = stack.FindLastIndex(item => ReferenceEquals(item, Mark));
        if (mark < 0) throw Refuse("an opcode looks for a MARK that is not there");
        var items = stack.GetRange(mark + 1, stack.Count - mark - 1);
        stack.RemoveRange(mark, stack.Count - mark);
        return items;
    }

    object? Memo(long key) => memo.TryGetValue(key, out var value) ? value : throw Refuse($"memo entry {key} is read before it is written");

    T As<T>(object? value, string opcode) where T : class => value as T ?? throw Refuse($"{opcode} on a {value?.GetType().Name ?? "None"}");

    void SetItem(object? target, object? key, object? value)
    {
        var dict = As<Dictionary<string, object?>>(target, "SETITEM");
        if (key is not string name) throw Refuse($"a dict key that is not a string ({key?.GetType().Name ?? "None"})");
        dict[name] = value;
    }

    byte[] Bytes(long length)
    {
        if (length > input.BaseStream.Length) throw Refuse($"a value of {length:N0} bytes in a pickle of {input.BaseStream.Length:N0}");
        var bytes = input.ReadBytes((int)length);
        return bytes.Length == length ? bytes : throw new EndOfStreamException();
    }

    string Text(long length) => Encoding.UTF8.GetString(Bytes(length));

    long Long(int length)
    {
        if (length > 8) throw Refuse($"an integer of {length} bytes");
        var bytes = Bytes(length);
        long value = 0;
        for (var i = length - 1; i >= 0; i--) value = (value << 8) | bytes[i];
        // Little-endian two's complement: sign-extend from the top byte.
        if (length is > 0 and < 8 && (bytes[^1] & 0x80) != 0) value -= 1L << (8 * length);
        return value;
    }

    string Line()
    {
        var bytes = new List<byte>();
        for (var b = input.ReadByte(); b != (byte)'\n'; b = input.ReadByte())
        {
            if (bytes.Count > 256) throw Refuse("a GLOBAL name longer than 256 bytes");
            bytes.Add(b);
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    Global Allowed(string? module, string? name)
    {
        var allowed = (module, name) switch
        {
            ("collections", "OrderedDict") => true,
            ("torch._utils", "_rebuild_tensor_v2" or "_rebuild_tensor" or "_rebuild_parameter") => true,
            ("torch", { } storage) => Storages.Contains(storage),
            _ => false,
        };
        if (!allowed) throw Refuse($"it names the global '{module}.{name}', which is not a tensor, a storage type or OrderedDict");
        return new Global(module!, name!);
    }

    StorageRef Persistent(object? pid)
    {
        if (pid is not object?[] { Length: 5 } parts || parts[0] is not "storage" || parts[1] is not Global { Module: "torch" } type
            || parts[2] is not string key || parts[4] is not long elements || elements < 0)
            throw Refuse("a persistent id that is not ('storage', type, key, location, size)");
        if (key.Length == 0 || key.Length > 64 || !key.All(char.IsAsciiLetterOrDigit))
            throw Refuse($"a storage key '{key}' that is not a record name");
        return new StorageRef(type.Name, key, elements);
    }

    object? Reduce(object? callable, object? args)
    {
        if (callable is not Global global || args is not object?[] a) throw Refuse("REDUCE on something other than an allowed global and a tuple");
        switch (global.Name)
        {
            case "OrderedDict" when a.Length == 0:
                return new Dictionary<string, object?>();
            case "OrderedDict" when a is [IEnumerable<object?> pairs]:   // OrderedDict(iterable of (key, value))
            {
                var dict = new Dictionary<string, object?>();
                foreach (var pair in pairs)
                {
                    if (pair is not object?[] { Length: 2 } kv) throw Refuse("OrderedDict built from something other than (key, value) pairs");
                    SetItem(dict, kv[0], kv[1]);
                }
                return dict;
            }
            case "_rebuild_tensor_v2" or "_rebuild_tensor" when a.Length >= 4 && a[0] is StorageRef storage && a[1] is long offset:
                return new TensorRef(storage, offset, Shape(a[2], "size"), Shape(a[3], "stride"));
            case "_rebuild_parameter" when a.Length >= 1 && a[0] is TensorRef tensor:
                return tensor;
            default:
                throw Refuse($"'{global.Module}.{global.Name}' called with arguments it does not take");
        }
    }

    long[] Shape(object? value, string what)
    {
        if (value is not object?[] items || items.Any(i => i is not long)) throw Refuse($"a tensor {what} that is not a tuple of integers");
        return items.Select(i => (long)i!).ToArray();
    }
}
