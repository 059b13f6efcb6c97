// Files through the SDK: write and read back (text, binary, several MB, empty, spaces and
// special characters in the path), list a directory, delete.
import { randomBytes } from "node:crypto";
import { RemoteAPIError } from "tensorlake";
import { test } from "../harness.mjs";
import { assert, createSandbox, rejectsWith } from "../lib.mjs";

let shared;
async function box() {
	shared ??= await createSandbox({ name: "compat-files" });
	return shared;
}

test("files: writeFile / readFile text and binary (all 256 byte values)", async () => {
	const sbx = await box();
	await sbx.writeFile("/tmp/hello.txt", new TextEncoder().encode("hello, world\n"));
	const back = await sbx.readFile("/tmp/hello.txt");
	assert.equal(new TextDecoder().decode(back), "hello, world\n");
	const bin = new Uint8Array(4096).map((_, i) => i % 256);
	await sbx.writeFile("/tmp/bin.dat", bin);
	assert.deepEqual(new Uint8Array(await sbx.readFile("/tmp/bin.dat")), bin);
	const sum = await sbx.run("md5sum", { args: ["/tmp/bin.dat"] });
	const { createHash } = await import("node:crypto");
	assert.equal(sum.stdout.split(" ")[0], createHash("md5").update(bin).digest("hex"));
});

test("files: a few MB of random bytes round-trip", async () => {
	const sbx = await box();
	const data = randomBytes(5 * 1024 * 1024 + 17);
	await sbx.writeFile("/tmp/big.bin", new Uint8Array(data));
	const back = Buffer.from(await sbx.readFile("/tmp/big.bin"));
	assert.equal(back.length, data.length);
	assert.ok(back.equals(data), "content differs");
	const size = await sbx.run("stat", { args: ["-c", "%s", "/tmp/big.bin"] });
	assert.equal(Number(size.stdout), data.length);
});

test("files: paths with spaces, + and &, nested directories created", async () => {
	const sbx = await box();
	const path = "/tmp/dir with space/a+b & c.txt";
	await sbx.writeFile(path, new TextEncoder().encode("spaced"));
	assert.equal(new TextDecoder().decode(await sbx.readFile(path)), "spaced");
	const r = await sbx.run("cat", { args: [path] });
	assert.equal(r.stdout, "spaced");
	const ls = await sbx.listDirectory("/tmp/dir with space");
	assert.deepEqual(ls.entries.map((e) => e.name), ["a+b & c.txt"]);
});

test("files: empty file, listDirectory entries, deleteFile, errors", async () => {
	const sbx = await box();
	await sbx.run("mkdir", { args: ["-p", "/tmp/ls/sub"] });
	await sbx.writeFile("/tmp/ls/empty", new Uint8Array(0));
	await sbx.writeFile("/tmp/ls/three", new TextEncoder().encode("abc"));
	assert.equal((await sbx.readFile("/tmp/ls/empty")).length, 0);
	const ls = await sbx.listDirectory("/tmp/ls");
	assert.equal(ls.path, "/tmp/ls");
	const byName = Object.fromEntries(ls.entries.map((e) => [e.name, e]));
	assert.deepEqual(Object.keys(byName).sort(), ["empty", "sub", "three"]);
	assert.equal(byName.sub.isDir, true);
	assert.equal(byName.three.isDir, false);
	assert.equal(byName.three.size, 3);
	assert.equal(byName.empty.size, 0);
	assert.ok(byName.three.modifiedAt instanceof Date && byName.three.modifiedAt.getFullYear() >= 2024,
		`modifiedAt ${byName.three.modifiedAt}`);
	await sbx.deleteFile("/tmp/ls/three");
	const e = await rejectsWith(sbx.readFile("/tmp/ls/three"), RemoteAPIError, "reading a deleted file");
	assert.equal(e.statusCode, 404);
	const after = await sbx.listDirectory("/tmp/ls");
	assert.ok(!after.entries.some((x) => x.name === "three"));
	const e2 = await rejectsWith(sbx.listDirectory("/tmp/nope"), RemoteAPIError, "listing a missing dir");
	assert.equal(e2.statusCode, 404);
	const e3 = await rejectsWith(sbx.readFile("/tmp/ls"), RemoteAPIError, "reading a directory");
	assert.equal(e3.statusCode, 400);
});
