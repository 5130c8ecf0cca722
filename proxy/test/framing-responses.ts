/**
 * The response corpus of the differential framing test: what an upstream answers to `GET /case`.
 * Valid baselines, issue 18's response-side findings, and the request corpus's smuggling shapes
 * turned around (Transfer-Encoding gadgets with and without Content-Length, Content-Length and
 * chunk-size spellings, line ends), each followed by bytes that would read as a forged second
 * response if the framing were misread.
 */
import { teGadgets } from "./framing-corpus.ts";

export interface ResponseCase {
  name: string;
  text: string;
}

const forged = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged";
const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
const head = (fields: string[]) => `HTTP/1.1 200 OK\r\n${fields.map((f) => `${f}\r\n`).join("")}\r\n`;

const baselines: ResponseCase[] = [
  { name: "a length", text: `${head(["Content-Length: 5"])}hello` },
  {
    name: "chunked with trailers",
    text: `${head(["Transfer-Encoding: chunked"])}${chunk("hello")}0\r\nX-T: 1\r\n\r\n`,
  },
  {
    name: "chunked with extensions",
    text: `${head(["Transfer-Encoding: chunked"])}5;a=b;c="d e"\r\nhello\r\n0\r\n\r\n`,
  },
  { name: "an empty body", text: head(["Content-Length: 0"]) },
  { name: "204", text: "HTTP/1.1 204 No Content\r\n\r\n" },
  { name: "304 with a length", text: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n" },
  { name: "100 Continue first", text: `HTTP/1.1 100 Continue\r\n\r\n${head(["Content-Length: 2"])}ok` },
  {
    name: "103 Early Hints first",
    text: `HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${head(["Content-Length: 2"])}ok`,
  },
  { name: "no reason phrase", text: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok" },
  { name: "a 500", text: "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail" },
  { name: "obs-text in a value", text: `${head(["X: caf\xe9", "Content-Length: 2"])}ok` },
  { name: "leading zeros in the length", text: `${head(["Content-Length: 002"])}ok` },
];

/** Issue 18's response-side findings. */
const findings: ResponseCase[] = [
  {
    name: "finding: Transfer-Encoding and Content-Length",
    text: `${head(["Content-Length: 0", "Transfer-Encoding: chunked"])}${chunk(forged)}0\r\n\r\n`,
  },
  { name: "finding: a head ending in a bare LF", text: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok" },
  {
    name: "finding: a control character in a value",
    text: `${head(["X-Evil: a\x01b", "Content-Length: 2"])}ok`,
  },
  {
    name: "finding: an unsolicited 101",
    text: `HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: upgrade\r\n\r\n${forged}`,
  },
  {
    name: "finding: a bare LF after a chunk size",
    text: `${head(["Transfer-Encoding: chunked"])}2\nok\r\n0\r\n\r\n${forged}`,
  },
  {
    name: "finding: a bare LF ending a chunk extension",
    text: `${head(["Transfer-Encoding: chunked"])}2;a=b\nok\r\n0\r\n\r\n${forged}`,
  },
  { name: "bytes after a whole response", text: `${head(["Content-Length: 2"])}ok${forged}` },
  { name: "bytes after a 204", text: `HTTP/1.1 204 No Content\r\n\r\n${forged}` },
  {
    name: "Transfer-Encoding in trailers",
    text: `${head(["Transfer-Encoding: chunked"])}${chunk("ok")}0\r\nTransfer-Encoding: gzip\r\n\r\n`,
  },
  {
    name: "Content-Length in trailers",
    text: `${head(["Transfer-Encoding: chunked"])}${chunk("ok")}0\r\nContent-Length: 9\r\n\r\n`,
  },
];

const contentLengths = ["+2", "2 ", "2\t", "2,2", "2, 2", "0x2", "", "-1", "2a"];
const chunkSizes = ["0x2", "2 ", "2\t", " 2", "-2", "2;", "2;a=", '2;a="b', "2 ;a", "02"];

function variants(): ResponseCase[] {
  const out: ResponseCase[] = [];
  for (const [name, gadget] of teGadgets) {
    out.push({
      name: `TE+CL ${name}`,
      text: `${head(["Content-Length: 2", gadget])}ok${chunk(forged)}0\r\n\r\n`,
    });
    out.push({ name: `TE ${name}`, text: `${head([gadget])}${chunk("ok")}0\r\n\r\n${forged}` });
  }
  for (const v of contentLengths) {
    out.push({
      name: `Content-Length ${JSON.stringify(v)}`,
      text: `${head([`Content-Length: ${v}`])}ok${forged}`,
    });
  }
  out.push({
    name: "two Content-Length lines",
    text: `${head(["Content-Length: 2", "Content-Length: 2"])}ok${forged}`,
  });
  for (const v of chunkSizes) {
    out.push({
      name: `chunk size ${JSON.stringify(v)}`,
      text: `${head(["Transfer-Encoding: chunked"])}${v}\r\nok\r\n0\r\n\r\n${forged}`,
    });
  }
  const base = `${head(["Transfer-Encoding: chunked", "X: y"])}${chunk("ok")}0\r\n\r\n`;
  const ends: number[] = [];
  for (let i = base.indexOf("\r\n"); i !== -1; i = base.indexOf("\r\n", i + 2)) ends.push(i);
  for (const [n, at] of ends.entries()) {
    for (const [label, repl] of [
      ["LF", "\n"],
      ["CR", "\r"],
    ] as const) {
      out.push({
        name: `line end ${n + 1} as ${label}`,
        text: `${base.slice(0, at)}${repl}${base.slice(at + 2)}${forged}`,
      });
    }
  }
  return out;
}

export function responseCorpus(): ResponseCase[] {
  return [...baselines, ...findings, ...variants()];
}
