// Runs in a real-node pod: answers every HTTP request with its name and host name.
const http = require("node:http");
const os = require("node:os");
const port = Number(process.argv[2] ?? 8080);
const name = process.argv[3] ?? "app";
http
  .createServer((req, res) => res.end(`hello from ${name} on ${os.hostname()}\n`))
  .listen(port, () => console.log(`${name} listening on ${port}`));
