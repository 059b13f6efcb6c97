// PTY sessions through the SDK's WebSocket client: createPty with onData, input, resize, the
// exit code (EXIT frame), reconnecting with connectPty, kill.
import { test } from "../harness.mjs";
import { assert, createSandbox, eventually } from "../lib.mjs";

let shared;
async function box() {
	shared ??= await createSandbox({ name: "compat-pty" });
	return shared;
}

const text = (chunks) => Buffer.concat(chunks.map((c) => Buffer.from(c))).toString("utf8");

test("pty: createPty, onData, sendInput, resize, exit code", async () => {
	const sbx = await box();
	const chunks = [];
	let exited = null;
	const pty = await sbx.createPty({
		command: "/bin/sh", rows: 30, cols: 100, env: { TERM: "xterm", PS1: "$ " }, workingDir: "/tmp",
		onData: (d) => chunks.push(d), onExit: (c) => (exited = c),
	});
	assert.ok(pty.sessionId && pty.token);
	await pty.sendInput("stty size; pwd\n");
	await eventually(() => /30 100/.test(text(chunks)) && /\/tmp/.test(text(chunks)), 10_000, "stty size 30 100 and pwd");
	await pty.resize(132, 43);
	await pty.sendInput("stty size\n");
	await eventually(() => /43 132/.test(text(chunks)), 10_000, "stty size after resize (43 132)");
	await pty.sendInput("echo $((6*7)); exit 5\n");
	const code = await pty.wait();
	assert.equal(code, 5);
	assert.equal(exited, 5);
	assert.match(text(chunks), /42/);
});

test("pty: disconnect and connectPty re-attach to the same shell; kill ends it", async () => {
	const sbx = await box();
	const first = [];
	const pty = await sbx.createPty({ command: "/bin/sh", onData: (d) => first.push(d) });
	await pty.sendInput("X=remembered\n");
	await pty.sendInput("echo ready-$((1+1))\n");
	await eventually(() => /ready-2/.test(text(first)), 10_000, "first output");
	pty.disconnect();
	const second = [];
	const again = await sbx.connectPty(pty.sessionId, pty.token, { onData: (d) => second.push(d) });
	await again.sendInput("echo value=$X\n");
	await eventually(() => /value=remembered/.test(text(second)), 10_000, "the same shell after re-attach");
	const waited = again.wait().catch((e) => e);
	await again.kill();
	const end = await waited;
	assert.ok(end instanceof Error ? /terminated/.test(end.message) : typeof end === "number", `wait after kill: ${end}`);
});

test("pty: a wrong token is refused", async () => {
	const sbx = await box();
	const pty = await sbx.createPty({ command: "/bin/sh" });
	const waited = pty.wait().catch((e) => e);
	let err = null;
	try {
		await sbx.connectPty(pty.sessionId, "0".repeat(64));
	} catch (e) {
		err = e;
	}
	assert.ok(err, "connecting with a wrong token must fail");
	assert.match(String(err.message), /403|401|READY/);
	await pty.kill();
	const end = await waited;
	assert.ok(end instanceof Error ? /terminated/.test(end.message) : typeof end === "number", `wait after kill: ${end}`);
});
