// A tiny sequential test harness for the compat suite: test() registers a scenario, skip()
// ends one as SKIP with a reason, run() prints PASS/FAIL/SKIP lines and "N passed, N failed".
import { inspect } from "node:util";

export class Skip extends Error {}

const tests = [];
const cleanups = [];

/** Registers a scenario. fn gets no arguments; throwing fails it, skip() skips it. */
export function test(name, fn, { timeout = 120_000 } = {}) {
	tests.push({ name, fn, timeout });
}

/** Ends the current scenario as SKIP with reason. */
export function skip(reason) {
	throw new Skip(reason);
}

/** Registers fn to run after every scenario ran (best effort, errors ignored). */
export function atExit(fn) {
	cleanups.push(fn);
}

function describe(err) {
	if (err && err.name && typeof err.message === "string") {
		const extra = err.statusCode ? ` [statusCode ${err.statusCode}]` : "";
		const stack = (err.stack || "").split("\n").slice(1, 4).join("\n");
		return `${err.name}: ${err.message}${extra}\n${stack}`;
	}
	return inspect(err, { depth: 4 });
}

// An error nobody listens for (the SDK's tunnel relay raises one when a WebSocket upgrade is
// refused) would kill the whole run. It is counted as a failure of its own, named after the
// scenario that was running, and the scenario goes on.
let current = null;
let stray = 0;
function onStray(kind, err) {
	stray++;
	console.log(`FAIL: ${kind} while "${current ?? "no scenario"}" ran`);
	console.log(String(err?.stack || err).split("\n").slice(0, 4).join("\n").replace(/^/gm, "    | "));
}
process.on("uncaughtException", (err) => onStray("uncaught exception", err));
process.on("unhandledRejection", (err) => onStray("unhandled rejection", err));

function withTimeout(promise, ms, name) {
	let timer;
	const t = new Promise((_, reject) => {
		timer = setTimeout(() => reject(new Error(`${name}: timed out after ${ms} ms`)), ms);
	});
	return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** Runs the scenarios whose name contains filter (all when empty); resolves to the fail count. */
export async function run(filter = "") {
	let passed = 0, failed = 0, skipped = 0;
	for (const t of tests) {
		if (filter && !t.name.includes(filter)) continue;
		const started = Date.now();
		current = t.name;
		try {
			await withTimeout(Promise.resolve().then(t.fn), t.timeout, t.name);
			passed++;
			console.log(`PASS: ${t.name} (${Date.now() - started} ms)`);
		} catch (err) {
			if (err instanceof Skip) {
				skipped++;
				console.log(`SKIP: ${t.name}: ${err.message}`);
			} else {
				failed++;
				console.log(`FAIL: ${t.name}`);
				console.log(describe(err).replace(/^/gm, "    | "));
			}
		}
	}
	for (const fn of cleanups.reverse()) {
		try {
			await withTimeout(Promise.resolve().then(fn), 30_000, "cleanup");
		} catch {
			/* best effort */
		}
	}
	current = null;
	failed += stray;
	if (skipped) console.log(`(${skipped} skipped)`);
	console.log(`${passed} passed, ${failed} failed`);
	return failed;
}
