// Hocuspocus with its SQLite extension, as its docs set it up: `node hocuspocus_server.mjs PORT DB [DEBOUNCE_MS]`
// (no DEBOUNCE_MS: Hocuspocus's defaults, 2 s debounce and 10 s max debounce).
import { Server } from "@hocuspocus/server";
import { SQLite } from "@hocuspocus/extension-sqlite";

const [port, database, debounce] = process.argv.slice(2);
const configuration = { port: Number(port), quiet: true, extensions: [new SQLite({ database })] };
if (debounce !== undefined) configuration.debounce = Number(debounce);
const server = new Server(configuration);
await server.listen();
console.log("ready");
