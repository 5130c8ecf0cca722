// Entry point of the trellis-init image (bundled as /app/trellis-init.mjs): see init.ts.
import { main } from "./init.ts";

main(process.argv.slice(2));
