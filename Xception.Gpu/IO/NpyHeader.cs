using System.Globalization;
using System.Text;

namespace Xception.Gpu.IO;

/// <summary>
/// The header dictionary of a .npy file, a Python literal such as
/// <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (2, 3), }</c>. NumPy writes it with
/// <c>repr</c>, so a small literal parser (strings, True/False, tuples of integers) reads every file NumPy
/// writes; a structured dtype (a list) is kept as raw text so the dtype error can quote it.
/// </summary>
internal sealed record NpyHeader(string Descr, bool FortranOrder, int[] Shape)
{
    /// <summary>NumPy pads the header so the data starts at a multiple of this (numpy.lib.format.ARRAY_ALIGN).</summary>
    public const int Align = 64;

    public static NpyHeader Parse(string path, string text)
    {
        var p = new Parser(path, text);
        string? descr = null; bool? fortran = null; int[]? shape = null;
        p.Expect('{');
        while (!p.TryTake('}'))
        {
            string key = p.String();
            p.Expect(':');
            switch (key)
            {
                case "descr": descr = p.DescrValue(); break;
                case "fortran_order": fortran = p.Bool(); break;
                case "shape": shape = p.Tuple(); break;
                default: p.SkipValue(); break;
            }
            if (!p.TryTake(',')) { p.Expect('}'); break; }
        }
        if (descr is null || fortran is null || shape is null)
            throw p.Fail("it lacks one of the keys 'descr', 'fortran_order' and 'shape'");
        return new(descr, fortran.Value, shape);
    }

    /// <summary>
    /// The header text NumPy writes for a C-order array, before the alignment padding: the dictionary, then
    /// 21 - len(str(shape[0])) spaces (NumPy &gt;= 1.23 leaves room to grow the first dimension in place).
    /// Matching it makes our files byte-identical to <c>numpy.save</c>'s.
    /// </summary>
    public static string Format(string descr, int[] shape)
    {
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {ShapeText(shape)}, }}";
        return shape.Length == 0 ? dict : dict + new string(' ', Math.Max(0, 21 - shape[0].ToString(CultureInfo.InvariantCulture).Length));
    }

    /// <summary>Number of values; saturates above <see cref="Array.MaxLength"/> so huge shapes cannot overflow.</summary>
    public static long Count(int[] shape)
    {
        long n = 1;
        foreach (int d in shape) n = d == 0 ? 0 : n > Array.MaxLength ? n : n * d;
        return n;
    }

    /// <summary>Python's tuple repr: <c>()</c>, <c>(5,)</c>, <c>(2, 3)</c>.</summary>
    public static string ShapeText(int[] shape) => shape.Length switch
    {
        0 => "()",
        1 => $"({shape[0]},)",
        _ => "(" + string.Join(", ", shape) + ")",
    };

    /// <summary>
    /// <paramref name="s"/> cut to <paramref name="max"/> characters, with control characters (a newline inside
    /// a header string, say) written as \uXXXX: error messages quote header text and must stay one line.
    /// </summary>
    public static string Printable(string s, int max)
    {
        var cut = s.Length > max ? s[..max] : s;
        var sb = new StringBuilder(cut.Length + 8);
        foreach (char c in cut)
            if (char.IsControl(c) || c is '\u2028' or '\u2029') sb.Append($"\\u{(int)c:X4}");
            else sb.Append(c);
        if (cut.Length < s.Length) sb.Append("...");
        return sb.ToString();
    }

    sealed class Parser(string path, string text)
    {
        int at;

        public NpyException Fail(string why)
        {
            var shown = text.AsSpan().Trim();
            return new NpyException(path, $"npy file '{path}' has a malformed header ({why}): {Printable(shown[..Math.Min(shown.Length, 121)].ToString(), 120)}");
        }

        void SkipSpace() { while (at < text.Length && char.IsWhiteSpace(text[at])) at++; }

        public bool TryTake(char c)
        {
            SkipSpace();
            if (at < text.Length && text[at] == c) { at++; return true; }
            return false;
        }

        public void Expect(char c)
        {
            if (!TryTake(c)) throw Fail($"expected '{c}' at offset {at}");
        }

        public string String()
        {
            SkipSpace();
            if (at >= text.Length || (text[at] != '\'' && text[at] != '"')) throw Fail($"expected a quoted string at offset {at}");
            char q = text[at++];
            var sb = new StringBuilder();
            while (at < text.Length && text[at] != q)
            {
                if (text[at] == '\\' && at + 1 < text.Length) at++;
                sb.Append(text[at++]);
            }
            if (at >= text.Length) throw Fail("a string is not closed");
            at++;
            return sb.ToString();
        }

        /// <summary>A dtype string, or the raw text of a structured dtype (a list of fields).</summary>
        public string DescrValue()
        {
            SkipSpace();
            if (at < text.Length && (text[at] == '\'' || text[at] == '"')) return String();
            int start = at;
            SkipValue();
            return text[start..at].Trim();
        }

        public bool Bool()
        {
            SkipSpace();
            if (string.CompareOrdinal(text, at, "True", 0, 4) == 0) { at += 4; return true; }
            if (string.CompareOrdinal(text, at, "False", 0, 5) == 0) { at += 5; return false; }
            throw Fail($"expected True or False at offset {at}");
        }

        /// <summary>A tuple of non-negative integers; Python 2's long suffix (<c>3L</c>) is accepted.</summary>
        public int[] Tuple()
        {
            Expect('(');
            var dims = new List<int>();
            while (!TryTake(')'))
            {
                SkipSpace();
                int start = at;
                while (at < text.Length && char.IsAsciiDigit(text[at])) at++;
                if (at == start)
                    throw Fail($"expected a dimension (a non-negative integer) at offset {start}");
                if (!int.TryParse(text.AsSpan(start, at - start), NumberStyles.None, CultureInfo.InvariantCulture, out int d))
                    throw Fail($"dimension at offset {start} is larger than {int.MaxValue}");
                if (at < text.Length && text[at] == 'L') at++;
                dims.Add(d);
                if (!TryTake(',')) { Expect(')'); break; }
            }
            return dims.ToArray();
        }

        /// <summary>Skips a value of a key this reader ignores: a string or anything up to the next top-level comma.</summary>
        public void SkipValue()
        {
            SkipSpace();
            if (at < text.Length && (text[at] == '\'' || text[at] == '"')) { String(); return; }
            int depth = 0;
            for (; at < text.Length; at++)
            {
                char c = text[at];
                if (c is '(' or '[' or '{') depth++;
                else if (c is ')' or ']' or '}') { if (depth == 0) return; depth--; }
                else if (c == ',' && depth == 0) return;
                else if (c is '\'' or '"') { String(); at--; }
            }
        }
    }
}
