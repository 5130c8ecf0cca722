// The file-based catalog (FBC) of the trellis package and its upgrade policy, as pure functions:
// adding a release to a catalog keeps every earlier release's olm.bundle entry as it was
// published and appends the new one to each of its channels with `replaces` (the previous
// release in that channel) and `skipRange` (see upgradeEdge). Does not own the CSV itself.
import semver from "semver";
import { parseAllDocuments, stringify } from "yaml";
import { type BundleRelease, csvMetadata, csvName, ownedGvks, releaseImages } from "./olm-bundle-csv.ts";
import { icon, PACKAGE_NAME, SHORT_DESCRIPTION } from "./olm-bundle-listing.ts";

/** candidate: every release when it is cut. stable: releases promoted after a time in candidate. */
export const CHANNELS = ["candidate", "stable"] as const;
export type Channel = (typeof CHANNELS)[number];
export const DEFAULT_CHANNEL: Channel = "stable";

export interface ChannelEntry {
  name: string;
  replaces?: string;
  skipRange?: string;
}

export type CatalogDoc =
  | { schema: "olm.package"; name: string; defaultChannel: string; description: string; icon: unknown }
  | { schema: "olm.channel"; package: string; name: string; entries: ChannelEntry[] }
  | {
      schema: "olm.bundle";
      name: string;
      package: string;
      image: string;
      properties: Array<{ type: string; value: unknown }>;
      relatedImages: Array<{ name: string; image: string }>;
    };

/** Channels a release goes to when none are named: pre-releases to candidate only. */
export function defaultChannels(version: string): Channel[] {
  return semver.prerelease(version) ? ["candidate"] : ["candidate", "stable"];
}

const versionOf = (csv: string): string => csv.slice(`${PACKAGE_NAME}.v`.length);

/**
 * The upgrade edge of a new release in a channel. It replaces the newest earlier release in the
 * channel, and may be installed directly over any release of its own minor or the minor before
 * (skipRange ">=X.(Y-1).0 <X.Y.Z"), which matches the mesh's one-minor-at-a-time skew policy;
 * older installations step through the `replaces` chain.
 */
export function upgradeEdge(channelEntries: ChannelEntry[], version: string): ChannelEntry {
  const earlier = channelEntries
    .map((e) => versionOf(e.name))
    .filter((v) => semver.valid(v) && semver.lt(v, version))
    .sort(semver.rcompare);
  const previous = earlier[0];
  const later = channelEntries
    .map((e) => versionOf(e.name))
    .find((v) => semver.valid(v) && semver.gt(v, version));
  // OLM wants one head per channel: a hotfix of an older minor needs a channel of its own.
  if (later) throw new Error(`${version} is older than ${later}, already in the channel`);
  if (!previous) return { name: csvName(version) };
  const v = semver.parse(version);
  if (!v) throw new Error(`${version} is not a semantic version`);
  const floor = `${v.major}.${Math.max(v.minor - 1, 0)}.0`;
  return { name: csvName(version), replaces: csvName(previous), skipRange: `>=${floor} <${version}` };
}

/** The olm.bundle entry of a release, with the properties `opm render` derives from its bundle. */
export function bundleDoc(release: BundleRelease): CatalogDoc {
  const images = releaseImages(release);
  const meta = csvMetadata(release);
  return {
    schema: "olm.bundle",
    name: csvName(release.version),
    package: PACKAGE_NAME,
    image: images.bundle ?? "",
    properties: [
      ...ownedGvks().map((value) => ({ type: "olm.gvk", value })),
      { type: "olm.package", value: { packageName: PACKAGE_NAME, version: release.version } },
      {
        type: "olm.csv.metadata",
        value: { annotations: meta.annotations, labels: meta.labels, ...withoutIcon(meta.spec) },
      },
    ],
    relatedImages: [
      { name: "", image: images.bundle ?? "" },
      ...(["control-plane", "init", "cni", "operator", "proxy"] as const).map((name) => ({
        name,
        image: images[name] ?? "",
      })),
    ],
  };
}

function withoutIcon<T extends { icon: unknown; customresourcedefinitions: unknown }>(spec: T) {
  const { icon: _icon, customresourcedefinitions, ...rest } = spec;
  return { ...rest, crdDescriptions: customresourcedefinitions };
}

/** The catalog with a release added (replacing an entry of the same version, if any). */
export function withRelease(
  docs: CatalogDoc[],
  release: BundleRelease,
  channels: readonly Channel[],
): { docs: CatalogDoc[]; release: BundleRelease } {
  const name = csvName(release.version);
  const kept = docs.filter((d) => d.schema === "olm.bundle" && d.name !== name);
  const out: CatalogDoc[] = [
    {
      schema: "olm.package",
      name: PACKAGE_NAME,
      defaultChannel: DEFAULT_CHANNEL,
      description: SHORT_DESCRIPTION,
      icon: icon()[0],
    },
  ];
  let edges: ChannelEntry | undefined;
  for (const channel of CHANNELS) {
    const existing = docs.find((d) => d.schema === "olm.channel" && d.name === channel);
    const entries = existing?.schema === "olm.channel" ? existing.entries.filter((e) => e.name !== name) : [];
    if (channels.includes(channel)) {
      const edge = upgradeEdge(entries, release.version);
      entries.push(edge);
      edges ??= edge;
    }
    if (entries.length > 0)
      out.push({ schema: "olm.channel", package: PACKAGE_NAME, name: channel, entries });
  }
  const complete = { ...release, replaces: edges?.replaces, skipRange: edges?.skipRange };
  const bundles = [...kept, bundleDoc(complete)].sort((a, b) =>
    semver.compare(versionOf(a.name), versionOf(b.name)),
  );
  return { docs: [...out, ...bundles], release: complete };
}

export function parseCatalog(text: string): CatalogDoc[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as CatalogDoc | null)
    .filter((d): d is CatalogDoc => d !== null);
}

export function stringifyCatalog(docs: CatalogDoc[]): string {
  return `# Generated by \`npm run generate\` / hack/olm-release.ts. Do not edit.\n${docs
    .map((d) => stringify(d, { lineWidth: 0 }))
    .join("---\n")}`;
}
