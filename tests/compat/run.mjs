// Entry point of the compat suite (run by run.sh with Node 22): loads every scenario file in
// scenarios/ in name order, then runs them.
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { run } from "./harness.mjs";

const dir = join(dirname(fileURLToPath(import.meta.url)), "scenarios");
for (const f of readdirSync(dir).filter((f) => f.endsWith(".mjs")).sort())
	await import(pathToFileURL(join(dir, f)).href);
const failed = await run(process.argv[2] || "");
process.exit(failed ? 1 : 0);
