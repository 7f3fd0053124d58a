using System.Net;
using System.Text;

namespace Mhc.Cli.Reports;

/// <summary>
/// A small document model (headings, paragraphs, tables, images, code) rendered both as Markdown and
/// as a self-contained HTML page with the images embedded, so the two reports never drift apart.
/// </summary>
sealed class ReportDocument
{
    readonly List<Block> blocks = [];

    abstract record Block;
    sealed record Heading(int Level, string Text) : Block;
    sealed record Paragraph(string Text) : Block;
    sealed record Bullets(IReadOnlyList<string> Items) : Block;
    sealed record TableBlock(IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Rows) : Block;
    sealed record Image(string Caption, string File) : Block;
    sealed record Code(string Language, string Text) : Block;

    public ReportDocument Heading1(string text) => Add(new Heading(1, text));
    public ReportDocument Heading2(string text) => Add(new Heading(2, text));
    public ReportDocument Text(string text) => Add(new Paragraph(text));
    public ReportDocument List(IEnumerable<string> items) => Add(new Bullets(items.ToList()));
    public ReportDocument Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows) => Add(new TableBlock(header, rows.ToList()));
    public ReportDocument Figure(string caption, string file) => Add(new Image(caption, file));
    public ReportDocument CodeBlock(string language, string text) => Add(new Code(language, text));

    ReportDocument Add(Block block)
    {
        blocks.Add(block);
        return this;
    }

    public string ToMarkdown()
    {
        var md = new StringBuilder();
        foreach (var block in blocks)
        {
            switch (block)
            {
                case Heading h: md.Append('#', h.Level).Append(' ').AppendLine(h.Text).AppendLine(); break;
                case Paragraph p: md.AppendLine(p.Text).AppendLine(); break;
                case Bullets b:
                    foreach (var item in b.Items) md.Append("- ").AppendLine(item);
                    md.AppendLine();
                    break;
                case TableBlock t:
                    md.AppendLine("| " + string.Join(" | ", t.Header.Select(EscapePipes)) + " |");
                    md.AppendLine("|" + string.Concat(t.Header.Select(_ => "---|")));
                    foreach (var row in t.Rows) md.AppendLine("| " + string.Join(" | ", row.Select(EscapePipes)) + " |");
                    md.AppendLine();
                    break;
                case Image i: md.AppendLine($"![{i.Caption}]({i.File})").AppendLine(); break;
                case Code c: md.AppendLine("```" + c.Language).AppendLine(c.Text.TrimEnd()).AppendLine("```").AppendLine(); break;
            }
        }
        return md.ToString();
    }

    static string EscapePipes(string cell) => cell.Replace("|", "\\|", StringComparison.Ordinal);

    /// <summary>HTML with every image read from <paramref name="directory"/> and embedded as base64.</summary>
    public string ToHtml(string title, string directory)
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        var html = new StringBuilder();
        html.AppendLine($"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{E(title)}</title>");
        html.AppendLine("<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}" +
                        "table{border-collapse:collapse;margin:1em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}" +
                        "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}" +
                        "pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}figure{margin:1.5em 0}figcaption{color:#555}</style></head><body>");
        foreach (var block in blocks)
        {
            switch (block)
            {
                case Heading h: html.AppendLine($"<h{h.Level}>{E(h.Text)}</h{h.Level}>"); break;
                case Paragraph p: html.AppendLine($"<p>{InlineCode(E(p.Text))}</p>"); break;
                case Bullets b: html.AppendLine("<ul>" + string.Concat(b.Items.Select(i => $"<li>{InlineCode(E(i))}</li>")) + "</ul>"); break;
                case TableBlock t:
                    html.Append("<table><tr>").Append(string.Concat(t.Header.Select(c => $"<th>{E(c)}</th>"))).AppendLine("</tr>");
                    foreach (var row in t.Rows) html.Append("<tr>").Append(string.Concat(row.Select(c => $"<td>{E(c)}</td>"))).AppendLine("</tr>");
                    html.AppendLine("</table>");
                    break;
                case Image i:
                    var data = Convert.ToBase64String(File.ReadAllBytes(Path.Combine(directory, i.File)));
                    html.AppendLine($"<figure><img alt=\"{E(i.Caption)}\" src=\"data:image/png;base64,{data}\"><figcaption>{E(i.Caption)}</figcaption></figure>");
                    break;
                case Code c: html.AppendLine($"<pre><code>{E(c.Text.TrimEnd())}</code></pre>"); break;
            }
        }
        html.AppendLine("</body></html>");
        return html.ToString();
    }

    // `code` spans of the Markdown text, as HTML.
    static string InlineCode(string encoded)
    {
        var parts = encoded.Split('`');
        var sb = new StringBuilder();
        for (var i = 0; i < parts.Length; i++) sb.Append(i % 2 == 1 ? $"<code>{parts[i]}</code>" : parts[i]);
        return sb.ToString();
    }
}
