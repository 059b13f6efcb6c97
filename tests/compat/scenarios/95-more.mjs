// The rest of the SDK's sandbox surface: persisted logs, file-system mounts and the archive.
// A feature hutch does not have must be refused as unavailable (501, or 400 *_UNAVAILABLE):
// that is a SKIP. Answering "sandbox not found" for a live sandbox is a FAIL.
import { SandboxNotFoundError } from "tensorlake";
import { test } from "../harness.mjs";
import { assert, client, createSandbox, rejectsWith, skipIfUnavailable } from "../lib.mjs";

test("more: getLogs / listLogProcesses of a live sandbox", async () => {
	const sbx = await createSandbox();
	await sbx.run("echo", { args: ["to-the-log"] });
	try {
		const logs = await sbx.getLogs({ head: 10 });
		assert.ok(Array.isArray(logs.logs), "getLogs answers {logs: [...]}");
		const procs = await sbx.listLogProcesses();
		assert.ok(Array.isArray(procs.processes), "listLogProcesses answers {processes: [...]}");
	} catch (e) {
		skipIfUnavailable(e, ["LOGS_UNAVAILABLE"]);
	}
});

test("more: attachFileSystem / detachFileSystem of a live sandbox", async () => {
	const sbx = await createSandbox();
	assert.equal((await sbx.listFileSystems()).length, 0);
	try {
		await sbx.attachFileSystem("fs_compat", "/mnt/compat");
		await sbx.detachFileSystem("/mnt/compat");
	} catch (e) {
		skipIfUnavailable(e, ["FILE_SYSTEMS_UNAVAILABLE"]);
	}
});

test("more: listArchived answers a page; getArchived of an unknown id is SandboxNotFoundError", async () => {
	const page = await client.listArchived({ limit: 5 });
	assert.ok(Array.isArray(page.sandboxes));
	await rejectsWith(client.getArchived("aaaaaaaaaaaaaaaaaaaaa"), SandboxNotFoundError, "getArchived");
});
