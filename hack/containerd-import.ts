// Loads built images into a containerd (the one a local kubelet uses) under the names a Mesh asks
// for: `ctr -a <socket> -n k8s.io images import <archive>`. The archive's index names the image
// (io.containerd.image.name), so no --index-name is needed; giving --index-name the same name
// fails ("content digest ... not found": the index record is replaced by the manifest's and its
// blob collected before unpacking). The k8s.io namespace is the one the CRI plugin reads.
import { execFileSync } from "node:child_process";

export interface ImportableImage {
  reference: string;
  archive: string;
}

export const importArgs = (socket: string, archive: string, namespace = "k8s.io"): string[] => [
  "-a",
  socket,
  "-n",
  namespace,
  "images",
  "import",
  archive,
];

export function importIntoContainerd(socket: string, images: ImportableImage[], namespace = "k8s.io"): void {
  for (const image of images)
    execFileSync("ctr", importArgs(socket, image.archive, namespace), {
      stdio: ["ignore", "inherit", "inherit"],
    });
}
