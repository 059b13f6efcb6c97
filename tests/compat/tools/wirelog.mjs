// A logging reverse proxy for finding out what the SDK and hutch say to each other:
//   node wirelog.mjs LOGFILE LISTEN_PORT=HOST:PORT [LISTEN_PORT=HOST:PORT ...]
// Listens on 127.0.0.1 only. Each exchange is logged with its request line, headers, the first
// 2 KiB of both bodies and the status; WebSocket upgrades are logged (head only) and then piped.
import { appendFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";

const [logfile, ...maps] = process.argv.slice(2);
if (!logfile || !maps.length) {
	console.error("usage: wirelog.mjs LOGFILE LISTEN_PORT=HOST:PORT...");
	process.exit(2);
}
let seq = 0;
const LIMIT = 2048;
const log = (s) => appendFileSync(logfile, s + "\n");
const show = (buf) => {
	const s = buf.subarray(0, LIMIT).toString("utf8").replace(/[^\x09\x0a\x0d\x20-\x7e]/g, ".");
	return buf.length > LIMIT ? `${s}… (${buf.length} bytes)` : s;
};
const heads = (raw) => raw.reduce((a, v, i) => (i % 2 ? a + `${v}\n` : a + `  ${v}: `), "");

function forward(target, req, res) {
	const n = ++seq;
	const [host, port] = target.split(":");
	const body = [];
	req.on("data", (d) => body.push(d));
	req.on("end", () => {
		const reqBody = Buffer.concat(body);
		const up = http.request({ host, port, method: req.method, path: req.url, headers: req.rawHeaders.reduce((h, v, i, a) => (i % 2 ? h : (h.push([v, a[i + 1]]), h)), []).reduce((o, [k, v]) => ((o[k] = o[k] === undefined ? v : [].concat(o[k], v)), o), {}) }, (ur) => {
			res.writeHead(ur.statusCode, ur.rawHeaders);
			const out = [];
			ur.on("data", (d) => {
				out.push(d);
				res.write(d);
			});
			ur.on("end", () => {
				res.end();
				log(`#${n} <- ${ur.statusCode}\n${heads(ur.rawHeaders)}${show(Buffer.concat(out))}\n`);
			});
		});
		up.on("error", (e) => {
			log(`#${n} upstream error ${e.message}`);
			res.destroy();
		});
		log(`#${n} -> ${req.method} ${req.url} (listener ${req.socket.localPort})\n${heads(req.rawHeaders)}${show(reqBody)}`);
		up.end(reqBody);
	});
}

function upgrade(target, req, sock, head) {
	const n = ++seq;
	const [host, port] = target.split(":");
	log(`#${n} -> UPGRADE ${req.method} ${req.url}\n${heads(req.rawHeaders)}`);
	const up = net.connect(Number(port), host, () => {
		up.write(`${req.method} ${req.url} HTTP/1.1\r\n`);
		for (let i = 0; i < req.rawHeaders.length; i += 2) up.write(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`);
		up.write("\r\n");
		up.write(head);
		up.once("data", (d) => log(`#${n} <- ${d.toString("latin1").split("\r\n")[0]}`));
		up.pipe(sock);
		sock.pipe(up);
	});
	up.on("error", () => sock.destroy());
	sock.on("error", () => up.destroy());
}

for (const m of maps) {
	const [listen, target] = m.split("=");
	const srv = http.createServer((req, res) => forward(target, req, res));
	srv.on("upgrade", (req, sock, head) => upgrade(target, req, sock, head));
	srv.listen(Number(listen), "127.0.0.1");
}
