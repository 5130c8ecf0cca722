/**
 * HAProxy, the peer the Trellis proxy is measured against: configurations for one plain
 * hop and for two hops with mutual TLS between them (the same shape as two Trellis proxies),
 * both single-threaded like a Node process.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const head = `global
  maxconn 4096
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
`;

export function plainHop(dir: string, listen: number, upstream: number): string {
  const file = join(dir, "haproxy-plain.cfg");
  writeFileSync(
    file,
    `${head}frontend fe
  bind 127.0.0.1:${listen}
  default_backend be
backend be
  server up 127.0.0.1:${upstream}
`,
  );
  return file;
}

export interface TlsFiles {
  /** PEM with the certificate chain followed by the private key, as HAProxy wants it. */
  clientPem: string;
  serverPem: string;
  caPem: string;
}

/** Client side: plain in, mTLS out to the server side. */
export function tlsClientHop(dir: string, listen: number, serverSide: number, files: TlsFiles): string {
  const file = join(dir, "haproxy-tls-client.cfg");
  writeFileSync(
    file,
    `${head}frontend fe
  bind 127.0.0.1:${listen}
  default_backend be
backend be
  server peer 127.0.0.1:${serverSide} ssl verify required ca-file ${files.caPem} crt ${files.clientPem}
`,
  );
  return file;
}

/** Server side: mTLS in (client certificate required), plain out to the upstream. */
export function tlsServerHop(dir: string, listen: number, upstream: number, files: TlsFiles): string {
  const file = join(dir, "haproxy-tls-server.cfg");
  writeFileSync(
    file,
    `${head}frontend fe
  bind 127.0.0.1:${listen} ssl crt ${files.serverPem} ca-file ${files.caPem} verify required
  default_backend be
backend be
  server up 127.0.0.1:${upstream}
`,
  );
  return file;
}
