/**
 * The request corpus of the differential framing test: valid baselines, the request-side
 * findings of issue 18, request smuggling shapes from published catalogues, and systematic
 * variations of them. `{H}` stands for the Host value of the route under test.
 *
 * Sources (shapes re-written here, not copied): PortSwigger's request smuggling research (CL.TE,
 * TE.CL, TE.TE obfuscation — portswigger.net/research/http-desync-attacks-request-smuggling-reborn);
 * the Transfer-Encoding gadget list of defparam/smuggler (configs/exhaustive.py: name, value and
 * separator mutations, every control and high byte around the header); the HTTP Garden's trophy
 * payloads (narfindustries/http-garden README: chunk-size prefixes, `\r` in chunk-ext whitespace,
 * empty Content-Length, `,chunked`, header-name bytes, bare `\n` in request lines and fields).
 */

export interface FramingCase {
  name: string;
  /** The bytes, with `{H}` for the Host value. */
  text: string;
}

const crlf = "\r\n";
const tail = `GET /tail HTTP/1.1${crlf}Host: {H}${crlf}${crlf}`;
const post = (headers: string[], body: string) =>
  `POST /p HTTP/1.1${crlf}Host: {H}${crlf}${headers.map((h) => h + crlf).join("")}${crlf}${body}`;

const baselines: FramingCase[] = [
  { name: "GET", text: `GET /a?b=1 HTTP/1.1${crlf}Host: {H}${crlf}${crlf}` },
  { name: "POST with a length", text: post(["Content-Length: 5"], "hello") + tail },
  {
    name: "POST chunked, extensions and trailers",
    text:
      post(["Transfer-Encoding: chunked"], '5;a=b;c="d e"\r\nhello\r\n3\r\n!!!\r\n0\r\nX-T: 1\r\n\r\n') +
      tail,
  },
  { name: "three pipelined", text: tail.replace("tail", "one") + tail.replace("tail", "two") + tail },
  { name: "HEAD", text: `HEAD /h HTTP/1.1${crlf}Host: {H}${crlf}${crlf}${tail}` },
  { name: "OPTIONS *", text: `OPTIONS * HTTP/1.1${crlf}Host: {H}${crlf}${crlf}${tail}` },
  { name: "absolute-form", text: `GET http://{H}/abs HTTP/1.1${crlf}Host: {H}${crlf}${crlf}${tail}` },
  {
    name: "HTTP/1.0 keep-alive",
    text: `GET /old HTTP/1.0${crlf}Host: {H}${crlf}Connection: keep-alive${crlf}${crlf}${tail}`,
  },
  {
    name: "HTTP/1.0 without keep-alive ends the connection",
    text: `GET /old HTTP/1.0${crlf}Host: {H}${crlf}${crlf}${tail}`,
  },
  {
    name: "Connection: close ends the connection",
    text: `GET /c HTTP/1.1${crlf}Host: {H}${crlf}Connection: close${crlf}${crlf}${tail}`,
  },
  { name: "an empty line between pipelined requests", text: post(["Content-Length: 1"], "x") + crlf + tail },
  { name: "Expect: 100-continue", text: post(["Content-Length: 2", "Expect: 100-continue"], "ok") + tail },
  { name: "a 20 KB body", text: post(["Content-Length: 20000"], "z".repeat(20_000)) + tail },
  { name: "Content-Length: 0", text: post(["Content-Length: 0"], "") + tail },
  { name: "an empty chunked body", text: post(["Transfer-Encoding: chunked"], "0\r\n\r\n") + tail },
  {
    name: "obs-text in a value",
    text: `GET /o HTTP/1.1${crlf}Host: {H}${crlf}X: caf\xe9${crlf}${crlf}${tail}`,
  },
  { name: "a known extension method", text: `PROPFIND /dav HTTP/1.1${crlf}Host: {H}${crlf}${crlf}${tail}` },
  { name: "leading zeros in Content-Length", text: post(["Content-Length: 005"], "hello") + tail },
  { name: "a body cut short by the end of input", text: post(["Content-Length: 10"], "abc") },
  { name: "a chunked body cut short", text: post(["Transfer-Encoding: chunked"], "5\r\nab") },
  {
    name: "a pipelined request whose body the end of input cuts short",
    text: `GET /first HTTP/1.1${crlf}Host: {H}${crlf}${crlf}${post(["Content-Length: 5"], "")}`,
  },
];

/** Issue 18's request-side findings. */
const findings: FramingCase[] = [
  {
    name: "finding: an empty line before the request line",
    text: `\r\nGET /crlf HTTP/1.1${crlf}Host: {H}${crlf}${crlf}${tail}`,
  },
  { name: "finding: an extension method", text: `FOO /ext HTTP/1.1${crlf}Host: {H}${crlf}${crlf}${tail}` },
  { name: "finding: a lower-case method", text: `get /lower HTTP/1.1${crlf}Host: {H}${crlf}${crlf}${tail}` },
  {
    name: "finding: a bare LF after a chunk size",
    text: post(["Transfer-Encoding: chunked"], "3\nabc\r\n0\r\n\r\n") + tail,
  },
  {
    name: "finding: a bare LF ending a chunk extension",
    text: post(["Transfer-Encoding: chunked"], "3;a=b\nabc\r\n0\r\n\r\n") + tail,
  },
  {
    name: "finding: a bare LF after chunk data",
    text: post(["Transfer-Encoding: chunked"], "3\r\nabc\n0\r\n\r\n") + tail,
  },
  { name: "finding: no Host", text: `GET /nohost HTTP/1.1${crlf}${crlf}${tail}` },
  {
    name: "finding: two Host lines",
    text: `GET /two HTTP/1.1${crlf}Host: {H}${crlf}Host: other${crlf}${crlf}${tail}`,
  },
  {
    name: "finding: Transfer-Encoding and Content-Length",
    text: post(["Content-Length: 6", "Transfer-Encoding: chunked"], "0\r\n\r\nG") + tail,
  },
];

/** CL.TE: a length-reader sees `tail` next; a chunk-reader sees "G" + `tail`. */
const clTe = (gadget: string) => post(["Content-Length: 6", gadget], "0\r\n\r\nG") + tail;
/** TE.CL: a chunk-reader sees `tail` next; a length-reader sees "SMUGGLED…" as the next request. */
const teCl = (gadget: string) => post(["Content-Length: 3", gadget], "8\r\nSMUGGLED\r\n0\r\n\r\n") + tail;

export const teGadgets: [string, string][] = [
  ["plain", "Transfer-Encoding: chunked"],
  ["space before the name", " Transfer-Encoding: chunked"],
  ["tab before the name", "\tTransfer-Encoding: chunked"],
  ["tab after the colon", "Transfer-Encoding:\tchunked"],
  ["tab around the colon", "Transfer-Encoding\t:\tchunked"],
  ["space before the colon", "Transfer-Encoding : chunked"],
  ["space in the name", "Transfer Encoding: chunked"],
  ["underscore in the name", "Transfer_Encoding: chunked"],
  ["no space after the colon", "Transfer-Encoding:chunked"],
  ["two spaces after the colon", "Transfer-Encoding:  chunked"],
  ["vertical tab before the value", "Transfer-Encoding:\x0bchunked"],
  ["form feed before the value", "Transfer-Encoding:\x0cchunked"],
  ["chunked, cow", "Transfer-Encoding: chunked, cow"],
  ["cow, chunked", "Transfer-Encoding: cow, chunked"],
  [",chunked", "Transfer-Encoding: ,chunked"],
  ["chunked,", "Transfer-Encoding: chunked,"],
  ["chunked, chunked", "Transfer-Encoding: chunked, chunked"],
  ["identity, chunked", "Transfer-Encoding: identity, chunked"],
  ["Content-Encoding instead", "Content-Encoding: chunked"],
  ["obs-fold before the value", "Transfer-Encoding:\r\n chunked"],
  ["bare LF fold before the value", "Transfer-Encoding:\n chunked"],
  ["quoted", 'Transfer-Encoding: "chunked"'],
  ["single-quoted", "Transfer-Encoding: 'chunked'"],
  ["truncated value", "Transfer-Encoding: chunk"],
  ["mixed case", "TrAnSFer-EnCODinG: cHuNkeD"],
  ["upper case", "TRANSFER-ENCODING: CHUNKED"],
  ["trailing CR", "Transfer-Encoding: chunked\r"],
  ["trailing tab", "Transfer-Encoding: chunked\t"],
  ["cow then chunked on two lines", "Transfer-Encoding: cow\r\nTransfer-Encoding: chunked"],
  ["chunked then cow on two lines", "Transfer-Encoding: chunked\r\nTransfer-Encoding: cow"],
  ["CR inside the name", "Transfer\r-Encoding: chunked"],
  ["value between words", "Transfer-Encoding: cow chunked bar"],
  ["0xff before the value", "Transfer-Encoding:\xffchunked"],
  ["NBSP before the value", "Transfer-Encoding:\xa0chunked"],
  ["NEL after the name", "Transfer-Encoding\x85: chunked"],
  ["accent in the value", "Transfer-Encoding: ch\x96nked"],
  ["accent in the name", "Transf\x82r-Encoding: chunked"],
  ["after a bare CR", "X: X\rTransfer-Encoding: chunked"],
  ["after a bare LF", "X: X\nTransfer-Encoding: chunked"],
];

/** Bytes tried around the Transfer-Encoding header (smuggler's prespace/postspace/midspace/endspace). */
const probeBytes = [0x00, 0x01, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x7f, 0x80, 0x85, 0xa0, 0xff];

function teByteVariants(): FramingCase[] {
  const out: FramingCase[] = [];
  for (const b of probeBytes) {
    const c = String.fromCharCode(b);
    const hex = b.toString(16).padStart(2, "0");
    out.push({ name: `CL.TE byte ${hex} before the name`, text: clTe(`${c}Transfer-Encoding: chunked`) });
    out.push({ name: `CL.TE byte ${hex} after the name`, text: clTe(`Transfer-Encoding${c}: chunked`) });
    out.push({ name: `CL.TE byte ${hex} before the value`, text: clTe(`Transfer-Encoding:${c}chunked`) });
    out.push({ name: `CL.TE byte ${hex} after the value`, text: clTe(`Transfer-Encoding: chunked${c}`) });
  }
  return out;
}

const contentLengths: [string, string][] = [
  ["a plus sign", "+6"],
  ["a minus sign", "-1"],
  ["a trailing space", "6 "],
  ["a leading tab", "\t6"],
  ["a list", "6,6"],
  ["a list with a space", "6, 6"],
  ["a different list", "6, 7"],
  ["hex", "0x6"],
  ["a decimal point", "6.0"],
  ["empty", ""],
  ["an underscore", "0_6"],
  ["an overflow", "99999999999999999999"],
  ["a letter", "6a"],
];

function clVariants(): FramingCase[] {
  const out: FramingCase[] = contentLengths.map(([name, v]) => ({
    name: `Content-Length: ${name}`,
    text: post([`Content-Length: ${v}`], "0\r\n\r\nG") + tail,
  }));
  out.push(
    {
      name: "Content-Length twice, equal",
      text: post(["Content-Length: 6", "Content-Length: 6"], "0\r\n\r\nG") + tail,
    },
    {
      name: "Content-Length twice, different",
      text: post(["Content-Length: 6", "Content-Length: 1"], "0\r\n\r\nG") + tail,
    },
    {
      name: "Content-Length with a space before the colon",
      text: post(["Content-Length : 6"], "0\r\n\r\nG") + tail,
    },
    {
      name: "Content-Length with NEL after the name",
      text: post(["Content-Length\x85: 6"], "0\r\n\r\nG") + tail,
    },
    {
      name: "Transfer-Encoding alone, a tab after it",
      text: post(["Transfer-Encoding: chunked\t"], "0\r\n\r\nG") + tail,
    },
    {
      name: "Transfer-Encoding alone, a space after it",
      text: post(["Transfer-Encoding: chunked "], "0\r\n\r\n") + tail,
    },
    { name: "Content-Length, a tab after it", text: post(["Content-Length: 6\t"], "0\r\n\r\nG") + tail },
    {
      name: "Content-Length with a tab before the name (first field)",
      text: `POST /p HTTP/1.1\r\n\tContent-Length: 1\r\nHost: {H}\r\n\r\nX${tail}`,
    },
  );
  return out;
}

const chunkSizes: [string, string][] = [
  ["0x prefix", "0x3\r\nabc\r\n0\r\n\r\n"],
  ["underscore", "0_3\r\nabc\r\n0\r\n\r\n"],
  ["leading zeros", "003\r\nabc\r\n0\r\n\r\n"],
  ["upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n"],
  ["trailing space", "3 \r\nabc\r\n0\r\n\r\n"],
  ["trailing tab", "3\t\r\nabc\r\n0\r\n\r\n"],
  ["leading space", " 3\r\nabc\r\n0\r\n\r\n"],
  ["minus", "-3\r\nabc\r\n0\r\n\r\n"],
  ["NUL after the size", "3\x00\r\nabc\r\n0\r\n\r\n"],
  ["an empty size", "\r\n\r\n"],
  ["bytes after the size", "1these-bytes-never-get-validated\r\nZ\r\n0\r\n\r\n"],
  ["a bare CR before the extension", "2\r\r;a\r\n02\r\n0\r\n\r\n"],
  ["an extension without a name", "3;\r\nabc\r\n0\r\n\r\n"],
  ["an extension with an empty value", "3;a=\r\nabc\r\n0\r\n\r\n"],
  ["an unterminated quoted extension", '3;a="b\r\nabc\r\n0\r\n\r\n'],
  ["whitespace around the extension", "3 ; a = b\r\nabc\r\n0\r\n\r\n"],
  ["an overflowing size", "fffffffffffffffff\r\nabc\r\n0\r\n\r\n"],
  ["data longer than the size", "3\r\nabcd\r\n0\r\n\r\n"],
  ["data shorter than the size", "3\r\nab\r\n0\r\n\r\n"],
  ["no CRLF after the data", "3\r\nabc0\r\n\r\n"],
  ["a bare LF ending the body", "0\r\n\n"],
  ["a bare LF ending a trailer", "0\r\nX: y\n\r\n"],
  ["a trailer without a colon", "0\r\nX y\r\n\r\n"],
  ["Transfer-Encoding in trailers", "0\r\nTransfer-Encoding: gzip\r\n\r\n"],
  ["Content-Length in trailers", "0\r\nContent-Length: 5\r\n\r\n"],
  ["Host in trailers (allowed)", "0\r\nHost: other\r\n\r\n"],
  ["invalid size Z", "Z\r\nZZ\r\nZZZ\r\n\r\n"],
];

function chunkVariants(): FramingCase[] {
  return chunkSizes.map(([name, body]) => ({
    name: `chunked: ${name}`,
    text: post(["Transfer-Encoding: chunked"], body) + tail,
  }));
}

/** Every line end of a pipelined pair, alone, as a bare LF, a bare CR, or CR CR LF. */
function lineEndVariants(): FramingCase[] {
  const base = post(["Transfer-Encoding: chunked", "X: y"], "3\r\nabc\r\n0\r\n\r\n") + tail;
  const ends: number[] = [];
  for (let i = base.indexOf(crlf); i !== -1; i = base.indexOf(crlf, i + 2)) ends.push(i);
  const out: FramingCase[] = [];
  for (const [n, at] of ends.entries()) {
    for (const [label, repl] of [
      ["LF", "\n"],
      ["CR", "\r"],
      ["CRCRLF", "\r\r\n"],
    ] as const) {
      out.push({
        name: `line end ${n + 1} as ${label}`,
        text: base.slice(0, at) + repl + base.slice(at + 2),
      });
    }
  }
  return out;
}

const inner = "GET /inner HTTP/1.1\r\nHost: x\r\n\r\n";

const oddities: FramingCase[] = [
  {
    name: "a bare CR inside a value",
    text: `GET /cr HTTP/1.1\r\nHost: {H}\r\nVisible: :/\rSmuggled: :)\r\n\r\n${tail}`,
  },
  { name: "NUL in a value", text: `GET /nul HTTP/1.1\r\nHost: {H}\r\nX: a\x00b\r\n\r\n${tail}` },
  { name: "an empty field name", text: `GET /e HTTP/1.1\r\n: ignored\r\nHost: {H}\r\n\r\n${tail}` },
  {
    name: "an 0x85 byte in a field name",
    text: `GET /n HTTP/1.1\r\nHost: {H}\r\nHeader\x85: value\r\n\r\n${tail}`,
  },
  {
    name: "an empty value then bare LFs",
    text: `GET / HTTP/1.1\r\nHost: {H}\r\nUseless:\n\nGET /in HTTP/1.1\r\n\r\n${tail}`,
  },
  { name: "obs-fold in a value", text: `GET /f HTTP/1.1\r\nHost: {H}\r\nX: a\r\n b\r\n\r\n${tail}` },
  { name: "a bare LF inside the request line", text: `GET /\nHTTP/1.1\r\nHost: {H}\r\n\r\n${tail}` },
  { name: "HTTP/1.32", text: `GET /v HTTP/1.32\r\nHost: {H}\r\n\r\n${tail}` },
  { name: "HTTP/2.0 in a request line", text: `GET /v HTTP/2.0\r\nHost: {H}\r\n\r\n${tail}` },
  { name: "CRs in the version", text: `GET / HTTP/\r\r1.1\r\nHost: {H}\r\n\r\n${tail}` },
  { name: "two spaces after the method", text: `GET  /s HTTP/1.1\r\nHost: {H}\r\n\r\n${tail}` },
  { name: "a tab after the method", text: `GET\t/t HTTP/1.1\r\nHost: {H}\r\n\r\n${tail}` },
  { name: "HTTP/0.9", text: `GET /nine\r\n${tail}` },
  { name: "a target without a slash", text: `GET ! HTTP/1.1\r\nHost: {H}\r\n\r\n${tail}` },
  { name: "a method with punctuation", text: `G=":<>(e),[T];?" /get HTTP/1.1\r\nHost: {H}\r\n\r\n${tail}` },
  { name: "an empty Host", text: `GET /eh HTTP/1.1\r\nHost:\r\n\r\n${tail}` },
  { name: "a Host with a space", text: `GET /hs HTTP/1.1\r\nHost: a b\r\n\r\n${tail}` },
  { name: "a Host with userinfo", text: `GET /hu HTTP/1.1\r\nHost: u@{H}\r\n\r\n${tail}` },
  {
    name: "absolute-form with a query and no path",
    text: `GET http://{H}?q=1 HTTP/1.1\r\nHost: {H}\r\n\r\n${tail}`,
  },
  {
    name: "absolute-form with another Host",
    text: `GET http://{H}/x HTTP/1.1\r\nHost: elsewhere\r\n\r\n${tail}`,
  },
  { name: "CONNECT", text: `CONNECT {H} HTTP/1.1\r\nHost: {H}\r\n\r\n${tail}` },
  {
    name: "an Upgrade request",
    text: `GET /ws HTTP/1.1\r\nHost: {H}\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n${tail}`,
  },
  {
    name: "Transfer-Encoding in HTTP/1.0",
    text: `POST /p HTTP/1.0\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${tail}`,
  },
  {
    name: "a request inside a chunked body",
    text:
      post(["Transfer-Encoding: chunked"], `${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`) + tail,
  },
];

export function framingCorpus(): FramingCase[] {
  return [
    ...baselines,
    ...findings,
    ...teGadgets.flatMap(([name, g]) => [
      { name: `CL.TE ${name}`, text: clTe(g) },
      { name: `TE.CL ${name}`, text: teCl(g) },
    ]),
    ...teByteVariants(),
    ...clVariants(),
    ...chunkVariants(),
    ...lineEndVariants(),
    ...oddities,
  ];
}

/** The case's bytes for a route whose Host is `host`. */
export function caseBytes(c: FramingCase, host: string): Buffer {
  return Buffer.from(c.text.replaceAll("{H}", host), "latin1");
}
