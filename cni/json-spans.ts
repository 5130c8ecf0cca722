// Where each value of a JSON text is, as offsets into the text: enough to change one list of a
// file someone else wrote by splicing text in and out, so that taking out what was put in gives
// back the original bytes (comments of JSON.parse + JSON.stringify would reformat the whole
// file). The text must also be valid JSON (the caller checks with JSON.parse); this scanner
// assumes it and only finds the spans.

export type JsonSpan =
  | { kind: "object"; start: number; end: number; members: Array<{ key: string; value: JsonSpan }> }
  | { kind: "array"; start: number; end: number; items: JsonSpan[] }
  | { kind: "scalar"; start: number; end: number };

const WHITESPACE = new Set([" ", "\t", "\n", "\r"]);

/** The spans of a JSON text's values; `end` is one past the value's last character. */
export function jsonSpans(text: string): JsonSpan {
  let i = 0;
  const skip = () => {
    while (i < text.length && WHITESPACE.has(text[i] as string)) i++;
  };
  const expect = (c: string) => {
    if (text[i] !== c) throw new Error(`expected ${c} at offset ${i}`);
    i++;
  };
  const string = (): string => {
    const start = i;
    expect('"');
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    expect('"');
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): JsonSpan => {
    skip();
    const start = i;
    const c = text[i];
    if (c === "{") {
      i++;
      const members: Array<{ key: string; value: JsonSpan }> = [];
      skip();
      if (text[i] === "}") i++;
      else {
        for (;;) {
          skip();
          const key = string();
          skip();
          expect(":");
          members.push({ key, value: value() });
          skip();
          if (text[i] === ",") i++;
          else {
            expect("}");
            break;
          }
        }
      }
      return { kind: "object", start, end: i, members };
    }
    if (c === "[") {
      i++;
      const items: JsonSpan[] = [];
      skip();
      if (text[i] === "]") i++;
      else {
        for (;;) {
          items.push(value());
          skip();
          if (text[i] === ",") i++;
          else {
            expect("]");
            break;
          }
        }
      }
      return { kind: "array", start, end: i, items };
    }
    if (c === '"') {
      string();
      return { kind: "scalar", start, end: i };
    }
    while (i < text.length && !WHITESPACE.has(text[i] as string) && !",]}".includes(text[i] as string)) i++;
    if (i === start) throw new Error(`unexpected ${c === undefined ? "end" : c} at offset ${i}`);
    return { kind: "scalar", start, end: i };
  };
  const root = value();
  skip();
  if (i !== text.length) throw new Error(`trailing text at offset ${i}`);
  return root;
}
