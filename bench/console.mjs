// console.mjs: can an officer's console page keep up with 1,000 alerts/s?
// Starts a broker on 127.0.0.1 with a fresh development PKI, cpx-console
// for Croatia's node, headless Chromium (Debian's package, driven by
// puppeteer-core from console/web/node_modules) signed in on the live
// feed, then cpx-bench's open-loop publisher (W2's, as Slovenia's node:
// signed 1 KiB alerts, its monotonic send time in the summary) at RATE
// alerts/s for DURATION seconds. The page notes the wall-clock time each
// alert event reaches it and each alert's row enters the DOM (a
// MutationObserver on the feed list); the send time is mapped to the same
// clock. Prints, as "R key value" lines and a summary: publish -> event
// and -> row in the DOM p50/p99/max, alerts shown vs published, console
// CPU (utime + stime from /proc/PID/stat) and the page's JS heap and DOM
// size at the start and the end (after a forced garbage collection), so
// a feed that grows without bound shows.
//
// Run through bench/console.sh. Env: CPX_SOURCE_DIR, CPX_BINARY_DIR
// (build with -DCPX_BENCH=ON), RATE (1000), DURATION (20), CPX_CHROMIUM
// (/usr/bin/chromium), CPX_CONSOLE (another cpx-console, to compare), TAB
// (feed; status: the feed not drawn), CPX_KEEP=1 keeps the working
// directory.

import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readFileSync, rmSync,
	copyFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const SRC = process.env.CPX_SOURCE_DIR ||
	fileURLToPath(new URL('..', import.meta.url));
const BIN = process.env.CPX_BINARY_DIR || path.join(SRC, 'build');
const CHROMIUM = process.env.CPX_CHROMIUM || '/usr/bin/chromium';
const WEB = path.join(SRC, 'console/web');
const RATE = Number(process.env.RATE || 1000);
const SECONDS = Number(process.env.DURATION || 20);
const OFFICER = 'bench.officer', PASSWORD = 'bench-password-2026';
const BENCH = path.join(BIN, 'bench/cpx-bench');
const CONSOLE = process.env.CPX_CONSOLE || path.join(BIN, 'console/cpx-console');

for (const f of [CHROMIUM, path.join(WEB, 'node_modules/puppeteer-core'), BENCH,
	CONSOLE, path.join(BIN, 'broker/cpx-broker')]) {
	if (!existsSync(f)) {
		console.error(`console.mjs: ${f} missing (install-deps.sh; build ` +
			'with -DCPX_BENCH=ON; scripts/console-deps.sh)');
		process.exit(2);
	}
}
const require = createRequire(path.join(WEB, 'package.json'));
const puppeteer = require('puppeteer-core');

const procs = [];
let dir = null;
let browser = null;
const t0 = Date.now();

function log(msg) { console.error(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`); }
function sleep(ms) { return new Promise(r => setTimeout(r, ms)); }
function R(key, v) { console.log(`R ${key} ${v}`); }

async function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
		s.on('error', reject);
	});
}

async function waitFor(fn, ms, what) {
	const end = Date.now() + ms;
	for (;;) {
		const v = await fn();
		if (v)
			return v;
		if (Date.now() > end)
			throw new Error(`timed out after ${ms} ms waiting for ${what}`);
		await sleep(50);
	}
}

function start(name, file, args) {
	const out = path.join(dir, `${name}.log`);
	const p = spawn(file, args, { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
	p.stdoutText = '';
	p.stdout.on('data', b => { p.stdoutText += b; });
	p.stderr.on('data', b => writeFileSync(out, b, { flag: 'a' }));
	p.logFile = out;
	p.exited = new Promise(r => p.on('exit', (code, sig) => r({ code, sig })));
	procs.push(p);
	return p;
}

async function stop(p) {
	if (p.exitCode !== null || p.signalCode !== null)
		return p.exited;
	p.kill('SIGTERM');
	const t = setTimeout(() => p.kill('SIGKILL'), 10000);
	const r = await p.exited;
	clearTimeout(t);
	return r;
}

function logText(p) { return existsSync(p.logFile) ? readFileSync(p.logFile, 'utf8') : ''; }

// CPU seconds (user + system) of a process so far, from /proc/PID/stat.
function cpuSeconds(pid) {
	const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
	const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
	return (Number(f[11]) + Number(f[12])) / 100;	// utime, stime; USER_HZ
}

// Wall-clock ms minus CLOCK_MONOTONIC ms (what cpx-bench stamps), from
// the tightest of a few brackets.
function monoToWall() {
	let best = null;
	for (let i = 0; i < 50; i++) {
		const a = Number(process.hrtime.bigint()) / 1e6;
		const w = performance.timeOrigin + performance.now();
		const b = Number(process.hrtime.bigint()) / 1e6;
		if (best === null || b - a < best.span)
			best = { span: b - a, off: w - (a + b) / 2 };
	}
	return best.off;
}

function pct(sorted, q) {
	if (!sorted.length)
		return NaN;
	return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

async function pageMetrics(cdp) {
	await cdp.send('HeapProfiler.collectGarbage');
	const { metrics } = await cdp.send('Performance.getMetrics');
	const m = Object.fromEntries(metrics.map(x => [x.name, x.value]));
	return { heap: m.JSHeapUsedSize, nodes: m.Nodes, script: m.ScriptDuration,
		layout: m.LayoutDuration, style: m.RecalcStyleDuration, task: m.TaskDuration };
}

async function main() {
	dir = mkdtempSync(path.join(os.tmpdir(), 'cpx-bench-console-'));
	log(`working in ${dir}; ${RATE} alerts/s for ${SECONDS} s`);
	await execFileP(path.join(SRC, 'certs/cpx-pki'), ['init', path.join(dir, 'pki')]);
	copyFileSync(path.join(SRC, 'broker/policy.example.ini'), path.join(dir, 'policy.ini'));
	const port = await freePort();
	writeFileSync(path.join(dir, 'broker.ini'), `[broker]
listen = tcp://127.0.0.1:${port}
ca = pki/ca.pem
cert = pki/broker.pem
key = pki/broker.key
crl = pki/crl.pem
policy = policy.ini
audit_dir = audit
metrics_listen = 127.0.0.1:0
publish_rate = 0
`);
	const broker = start('broker', path.join(BIN, 'broker/cpx-broker'), ['-c', 'broker.ini']);
	await waitFor(() => / listening on /.test(logText(broker)), 60000, 'the broker to listen');

	const add = start('useradd', CONSOLE,
		['user', 'add', OFFICER, '--users', 'users', '--cost', '10']);
	add.stdin.end(`${PASSWORD}\n`);
	if ((await add.exited).code !== 0)
		throw new Error('cpx-console user add failed');
	const con = start('console', CONSOLE, [
		'--broker', `tcp://127.0.0.1:${port}`, '--pki', 'pki', '--node', 'hr-ncp',
		'--users', 'users', '--listen', '127.0.0.1:0', '--web', WEB]);
	const url = await waitFor(() => (/http:\/\/[0-9.:]+\//.exec(con.stdoutText) || [])[0],
		60000, 'the console URL');

	browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] });
	const page = await browser.newPage();
	await page.setViewport({ width: 1280, height: 860 });
	const errors = [];
	page.on('pageerror', e => errors.push(String(e)));
	// The meter's first stamp: each alert event as the page's
	// EventSource hands it over, before the application sees it.
	await page.evaluateOnNewDocument(() => {
		const add = EventSource.prototype.addEventListener;
		window.cpxArrived = [];
		EventSource.prototype.addEventListener = function (type, fn, ...rest) {
			if (type !== 'alert')
				return add.call(this, type, fn, ...rest);
			return add.call(this, type, e => {
				const t = /"summary":"t=(\d+)/.exec(e.data);
				if (t)
					window.cpxArrived.push(Number(t[1]) / 1e6,
						performance.timeOrigin + performance.now());
				return fn.call(this, e);
			}, ...rest);
		};
	});
	await page.goto(url, { waitUntil: 'networkidle0' });
	await page.waitForSelector('#signin-form', { visible: true });
	await page.type('#signin-name', OFFICER);
	await page.type('#signin-password', PASSWORD);
	await page.click('#signin-form button[type=submit]');
	await page.waitForSelector('#tab-feed', { visible: true });
	await page.waitForFunction(() => document.body.dataset.session === 'connected' ||
		document.getElementById('banner').hidden, { timeout: 10000 });
	// TAB=status: the feed's rows are made but not laid out (a check of
	// where the time goes).
	if (process.env.TAB)
		await page.click(`#tabs button[data-tab=${process.env.TAB}]`);
	// The meter: each row's arrival in the DOM, on the wall clock.
	await page.evaluate(() => {
		window.cpxSeen = [];
		new MutationObserver(muts => {
			const now = performance.timeOrigin + performance.now();
			for (const m of muts)
				for (const n of m.addedNodes) {
					const s = n.querySelector && n.querySelector('.summary');
					const t = s && /^t=(\d+)/.exec(s.textContent);
					if (t)
						window.cpxSeen.push(Number(t[1]) / 1e6, now);
				}
		}).observe(document.getElementById('feed'), { childList: true });
	});
	const cdp = await page.target().createCDPSession();
	await cdp.send('Performance.enable');
	const m0 = await pageMetrics(cdp);
	const off = monoToWall();
	const cpu0 = cpuSeconds(con.pid), w0 = Date.now();

	const b = spawn(BENCH, ['w2', '-t', 'cpx', '-S', '0', '-P', '1', '-r', String(RATE),
		'-d', String(SECONDS), '-k', path.join(dir, 'pki'), '-e', `tcp://127.0.0.1:${port}`,
		'-b', String(broker.pid)], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
	// Half-way, the heap again: bounded means the end is no higher.
	let mMid = null;
	const mid = setTimeout(async () => { mMid = await pageMetrics(cdp); }, SECONDS * 500);
	let bout = '';
	b.stdout.on('data', d => { bout += d; });
	b.stderr.on('data', d => writeFileSync(path.join(dir, 'bench.log'), d, { flag: 'a' }));
	const bexit = await new Promise(r => b.on('exit', r));
	clearTimeout(mid);
	if (bexit !== 0)
		throw new Error(`cpx-bench exited ${bexit}: ${readFileSync(path.join(dir, 'bench.log'), 'utf8')}`);
	const res = Object.fromEntries([...bout.matchAll(/^R (\S+) (\S+)$/gm)].map(m => [m[1], Number(m[2])]));
	const accepted = res.accepted;
	// Let the page catch up: until every accepted alert is in, or 10 s
	// without progress.
	let last = -1, still = Date.now();
	for (;;) {
		const n = await page.evaluate(() => window.cpxSeen.length / 2);
		if (n >= accepted)
			break;
		if (n !== last) {
			last = n;
			still = Date.now();
		} else if (Date.now() - still > 10000)
			break;
		await sleep(200);
	}
	const wall = (Date.now() - w0) / 1000;
	const cpu1 = cpuSeconds(con.pid);
	const m1 = await pageMetrics(cdp);
	const seen = await page.evaluate(() => window.cpxSeen);
	const arrived = await page.evaluate(() => window.cpxArrived);
	const arr = [];
	for (let i = 0; i < arrived.length; i += 2)
		arr.push(arrived[i + 1] - (arrived[i] + off));
	arr.sort((x, y) => x - y);
	const rows = await page.$$eval('#feed li.alert', l => l.length);
	const lat = [];
	for (let i = 0; i < seen.length; i += 2)
		lat.push(seen[i + 1] - (seen[i] + off));
	lat.sort((x, y) => x - y);
	const mb = x => (x / 1048576).toFixed(1);

	R('offered_per_s', RATE);
	R('seconds', SECONDS);
	R('published', accepted);
	R('shown', lat.length);
	R('rows_in_dom_at_end', rows);
	R('arrived', arr.length);
	R('event_ms.p50', pct(arr, 0.5).toFixed(1));
	R('event_ms.p99', pct(arr, 0.99).toFixed(1));
	R('dom_ms.p50', pct(lat, 0.5).toFixed(1));
	R('dom_ms.p99', pct(lat, 0.99).toFixed(1));
	R('dom_ms.max', pct(lat, 1).toFixed(1));
	R('ack_ms.p50', res['ack_ms.p50']);
	R('ack_ms.p99', res['ack_ms.p99']);
	R('console_cpu_s', (cpu1 - cpu0).toFixed(2));
	R('console_cpu_util', ((cpu1 - cpu0) / wall).toFixed(3));
	R('page_heap_mb.start', mb(m0.heap));
	if (mMid)
		R('page_heap_mb.mid', mb(mMid.heap));
	R('page_heap_mb.end', mb(m1.heap));
	R('page_dom_nodes.start', m0.nodes);
	if (mMid)
		R('page_dom_nodes.mid', mMid.nodes);
	R('page_dom_nodes.end', m1.nodes);
	R('page_script_s', (m1.script - m0.script).toFixed(2));
	R('page_layout_style_s', (m1.layout - m0.layout + m1.style - m0.style).toFixed(2));
	R('page_errors', errors.length);
	log(`${lat.length} of ${accepted} published alerts reached the page's DOM ` +
		`(${rows} rows kept at the end); publish -> DOM p50 ${pct(lat, 0.5).toFixed(1)} ms, ` +
		`p99 ${pct(lat, 0.99).toFixed(1)} ms, max ${pct(lat, 1).toFixed(1)} ms`);
	log(`${arr.length} alert events reached the page; publish -> event p50 ` +
		`${pct(arr, 0.5).toFixed(1)} ms, p99 ${pct(arr, 0.99).toFixed(1)} ms`);
	log(`console CPU ${(cpu1 - cpu0).toFixed(2)} s over ${wall.toFixed(1)} s ` +
		`(${(100 * (cpu1 - cpu0) / wall).toFixed(1)}% of a core); page JS heap ` +
		`${mb(m0.heap)} -> ${mMid ? mb(mMid.heap) : '?'} (half-way) -> ${mb(m1.heap)} MiB, ` +
		`DOM nodes ${m0.nodes} -> ${mMid ? mMid.nodes : '?'} -> ${m1.nodes} ` +
		'(the meter itself keeps 4 numbers an alert)');
	for (const e of errors)
		log(`page error: ${e}`);
	await browser.close();
	browser = null;
	const c = await stop(con), k = await stop(broker);
	if (c.code !== 0 || k.code !== 0)
		throw new Error(`console exit ${c.code}, broker exit ${k.code}`);
}

async function cleanup() {
	if (browser)
		await browser.close().catch(() => {});
	for (const p of procs)
		if (p.exitCode === null && p.signalCode === null)
			p.kill('SIGKILL');
	if (dir && !process.env.CPX_KEEP)
		rmSync(dir, { recursive: true, force: true });
	else if (dir)
		log(`kept ${dir}`);
}

let code = 0;
try {
	await main();
} catch (e) {
	log(`ERROR: ${e.stack || e}`);
	code = 1;
}
await cleanup();
process.exit(code);
