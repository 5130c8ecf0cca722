// Test and benchmark support: loads @peculiar/x509 on node's WebCrypto. Version 2 needs a Reflect
// metadata polyfill (through tsyringe) that is not among the project's dependencies; the three
// functions tsyringe calls are provided here, before the library is loaded.

import { webcrypto } from "node:crypto";

type MetadataKey = string | symbol;
const metadata = new WeakMap<object, Map<MetadataKey, unknown>>();

function getOwnMetadata(key: MetadataKey, target: object): unknown {
  return metadata.get(target)?.get(key);
}

function getMetadata(key: MetadataKey, target: object): unknown {
  for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t)) {
    const value = getOwnMetadata(key, t);
    if (value !== undefined) return value;
  }
  return undefined;
}

function defineMetadata(key: MetadataKey, value: unknown, target: object): void {
  let map = metadata.get(target);
  if (map === undefined) {
    map = new Map();
    metadata.set(target, map);
  }
  map.set(key, value);
}

if (!("getMetadata" in Reflect)) Object.assign(Reflect, { getMetadata, getOwnMetadata, defineMetadata });

export const x509 = await import("@peculiar/x509");
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** The library's types, for code that names them (the value above is loaded lazily). */
export type * as X509 from "@peculiar/x509";
