// One-shot commands through sandbox.run (the SSE run stream) and managed processes: start, get,
// list, follow, stdin, signals, kill, captured output.
import { ProcessStatus, RemoteAPIError, StdinMode } from "tensorlake";
import { test } from "../harness.mjs";
import { assert, createSandbox, eventually, rejectsWith, sleep } from "../lib.mjs";

let shared;
async function box() {
	shared ??= await createSandbox({ name: "compat-run" });
	return shared;
}

test("run: stdout, stderr and exit code", async () => {
	const sbx = await box();
	const r = await sbx.run("sh", { args: ["-c", "echo out1; echo err1 >&2; echo out2; exit 7"] });
	assert.equal(r.exitCode, 7);
	assert.equal(r.stdout, "out1\nout2");
	assert.equal(r.stderr, "err1");
	const ok = await sbx.run("true");
	assert.equal(ok.exitCode, 0);
	assert.equal(ok.stdout, "");
});

test("run: env, workingDir, user (name and uid object)", async () => {
	const sbx = await box();
	const r = await sbx.run("sh", { args: ["-c", 'echo "$GREETING $OTHER"; pwd'], env: { GREETING: "hi there", OTHER: "x=y" }, workingDir: "/tmp" });
	assert.equal(r.exitCode, 0, r.stderr);
	assert.equal(r.stdout, "hi there x=y\n/tmp");
	const u = await sbx.run("id", { args: ["-u"], user: "nobody" });
	assert.equal(u.exitCode, 0, u.stderr);
	assert.equal(u.stdout, "65534");
	const u2 = await sbx.run("sh", { args: ["-c", "id -u; id -g"], user: { uid: 1234, gid: 4321 } });
	assert.equal(u2.exitCode, 0, u2.stderr);
	assert.equal(u2.stdout, "1234\n4321");
});

test("run: timeout (fractional seconds) kills the command", async () => {
	const sbx = await box();
	const t0 = Date.now();
	const r = await sbx.run("sleep", { args: ["30"], timeout: 1.5 });
	const took = Date.now() - t0;
	assert.ok(took < 10_000, `run with timeout 1.5 s took ${took} ms`);
	assert.notEqual(r.exitCode, 0, "a timed-out command does not exit 0");
});

test("run: a missing command is an error result, large output arrives whole", async () => {
	const sbx = await box();
	let r;
	try {
		r = await sbx.run("/no/such/binary");
	} catch (e) {
		assert.ok(e instanceof RemoteAPIError, `unexpected ${e.name}: ${e.message}`);
		r = null;
	}
	if (r) assert.notEqual(r.exitCode, 0);
	const big = await sbx.run("sh", { args: ["-c", "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done"] });
	const lines = big.stdout.split("\n");
	assert.equal(lines.length, 20000);
	assert.equal(lines[19999], "line19999");
});

test("processes: startProcess, getProcess, listProcesses, getStdout, getStderr, getOutput", async () => {
	const sbx = await box();
	const p = await sbx.startProcess("sh", { args: ["-c", "echo a; echo b >&2; echo c; exit 3"] });
	assert.ok(p.pid > 0);
	assert.equal(p.command, "sh");
	assert.deepEqual(p.args, ["-c", "echo a; echo b >&2; echo c; exit 3"]);
	const done = await eventually(async () => {
		const info = await sbx.getProcess(p.pid);
		return info.status !== ProcessStatus.RUNNING && info;
	}, 10_000, "the process to exit");
	assert.equal(done.status, ProcessStatus.EXITED);
	assert.equal(done.exitCode, 3);
	assert.ok(done.endedAt instanceof Date);
	const list = await sbx.listProcesses();
	assert.ok(list.some((x) => x.pid === p.pid), "listProcesses has it");
	assert.deepEqual((await sbx.getStdout(p.pid)).lines, ["a", "c"]);
	assert.deepEqual((await sbx.getStderr(p.pid)).lines, ["b"]);
	const all = await sbx.getOutput(p.pid);
	assert.equal(all.pid, p.pid);
	assert.deepEqual([...all.lines].sort(), ["a", "b", "c"]);
	assert.equal(all.lineCount, 3);
});

test("processes: followOutput replays the backlog, streams live lines and ends", async () => {
	const sbx = await box();
	const p = await sbx.startProcess("sh", { args: ["-c", "echo first; sleep 1; echo second >&2; sleep 1; echo third"] });
	const events = [];
	for await (const ev of sbx.followOutput(p.pid)) events.push(ev);
	assert.deepEqual(events.map((e) => e.line), ["first", "second", "third"]);
	assert.equal(events[1].stream, "stderr");
	assert.ok(events.every((e) => e.timestamp instanceof Date && e.timestamp.getFullYear() >= 2024),
		`timestamps ${events.map((e) => e.timestamp)}`);
	const again = [];
	for await (const ev of sbx.followStdout(p.pid)) again.push(ev.line);
	assert.deepEqual(again, ["first", "third"], "follow after the end replays and ends");
});

test("processes: writeStdin, closeStdin (stdinMode pipe)", async () => {
	const sbx = await box();
	const p = await sbx.startProcess("sh", { args: ["-c", "while read l; do echo got:$l; done; echo eof"], stdinMode: StdinMode.PIPE });
	assert.equal(p.stdinWritable, true);
	await sbx.writeStdin(p.pid, new TextEncoder().encode("one\ntwo\n"));
	await sbx.writeStdin(p.pid, new Uint8Array(0));
	await eventually(async () => (await sbx.getStdout(p.pid)).lines.length === 2, 10_000, "two echoed lines");
	await sbx.closeStdin(p.pid);
	const done = await eventually(async () => {
		const i = await sbx.getProcess(p.pid);
		return i.status !== "running" && i;
	}, 10_000, "exit after EOF");
	assert.equal(done.exitCode, 0);
	assert.deepEqual((await sbx.getStdout(p.pid)).lines, ["got:one", "got:two", "eof"]);
	const closed = await sbx.startProcess("cat");
	assert.equal(closed.stdinWritable, false);
	await rejectsWith(sbx.writeStdin(closed.pid, new TextEncoder().encode("x")), RemoteAPIError, "stdin of a closed-stdin process");
});

test("processes: sendSignal, killProcess; unknown pid is 404", async () => {
	const sbx = await box();
	const p = await sbx.startProcess("sleep", { args: ["1000"] });
	const sig = await sbx.sendSignal(p.pid, 15);
	assert.equal(sig.success, true);
	const ended = await eventually(async () => {
		const i = await sbx.getProcess(p.pid);
		return i.status !== "running" && i;
	}, 10_000, "SIGTERM to end the process");
	assert.equal(ended.status, ProcessStatus.SIGNALED);
	assert.equal(ended.signal, 15);
	const q = await sbx.startProcess("sleep", { args: ["1000"] });
	await sbx.killProcess(q.pid);
	const killed = await eventually(async () => {
		const i = await sbx.getProcess(q.pid);
		return i.status !== "running" && i;
	}, 10_000, "kill to end the process");
	assert.equal(killed.signal, 9);
	const e = await rejectsWith(sbx.getProcess(999999), RemoteAPIError, "unknown pid");
	assert.equal(e.statusCode, 404);
});

test("processes: a managed process by name, with restart", async () => {
	const sbx = await box();
	const p = await sbx.startProcess("sh", {
		args: ["-c", "echo up; sleep 1000"], name: "web server", restart: { policy: "always", initialBackoffMs: 100 },
	});
	assert.equal(p.managed?.id, "web server");
	const byName = await sbx.getProcess("web server");
	assert.equal(byName.pid, p.pid);
	await sbx.sendSignal("web server", 9);
	const restarted = await eventually(async () => {
		const i = await sbx.getProcess("web server");
		return i.pid !== p.pid && i.status === "running" && i;
	}, 15_000, "a restart with a new pid");
	assert.ok(restarted.managed.restartCount >= 1);
	const again = await sbx.restartProcess("web server");
	assert.notEqual(again.pid, restarted.pid, "restartProcess gives a new pid");
	assert.equal((await sbx.getProcess("web server")).pid, again.pid);
	await sbx.killProcess("web server");
	await sleep(500);
	const after = await sbx.getProcess("web server");
	assert.notEqual(after.status, "running", "killProcess stops supervision");
});
