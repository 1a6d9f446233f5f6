// console.test.mjs: cpx-console end to end in a real browser. Starts a
// broker on 127.0.0.1 with a fresh development PKI, the console for
// Croatia's node with one officer account, and headless Chromium (Debian's
// package, driven by puppeteer-core). Then, as an officer would: a wrong
// password is refused, sign in, an alert published by Slovenia's node
// appears in the feed within a second and as a marker on the map, a
// publish whose recipients do not fit is refused with a readable reason
// (by the form, and by the broker), a publish goes through with the
// officer's name on it, the broker restarts and the feed says so and
// resumes without gap, a time range is replayed and exported, sign out.
// Without a session, without the CSRF token, or with a wrong password
// the API refuses, and repeated failures lock a name out. A screenshot of each page goes to $CPX_CONSOLE_SHOTS
// (default: $CPX_BINARY_DIR/console-screenshots).
//
// Exit 0 on success, 1 on a failure, 77 when Chromium or the npm packages
// are not installed (scripts/install-deps.sh installs both).

import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync, readFileSync,
	rmSync, copyFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const SRC = process.env.CPX_SOURCE_DIR ||
	fileURLToPath(new URL('../..', import.meta.url));
const BIN = process.env.CPX_BINARY_DIR || path.join(SRC, 'build');
const CHROMIUM = process.env.CPX_CHROMIUM || '/usr/bin/chromium';
const WEB = path.join(SRC, 'console/web');
const SHOTS = process.env.CPX_CONSOLE_SHOTS || path.join(BIN, 'console-screenshots');
const OFFICER = 'anna.kovac', PASSWORD = 'night-shift-2026';

if (!existsSync(CHROMIUM) || !existsSync(path.join(WEB, 'node_modules/puppeteer-core'))) {
	console.log(`SKIP: needs ${CHROMIUM} and ${WEB}/node_modules (scripts/console-deps.sh)`);
	process.exit(77);
}
const require = createRequire(path.join(WEB, 'package.json'));
const puppeteer = require('puppeteer-core');

const procs = [];
let dir = null;
let browser = null;
let failures = 0;
const t0 = Date.now();

function log(msg) { console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`); }
function check(cond, what) {
	if (cond) {
		log(`ok: ${what}`);
	} else {
		failures++;
		log(`FAIL: ${what}`);
	}
	return cond;
}
function sleep(ms) { return new Promise(r => setTimeout(r, ms)); }

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

// Poll fn (async, truthy when done) every 50 ms for at most ms.
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

function start(name, file, args, opts = {}) {
	const out = path.join(dir, `${name}.log`);
	const p = spawn(file, args, { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'], ...opts });
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

let brokerPort;
// Start the broker (again: its log is appended to, so count the lines).
async function startBroker() {
	const listening = t => (t.match(/ listening on /g) || []).length;
	const before = listening(existsSync(path.join(dir, 'broker.log')) ?
		readFileSync(path.join(dir, 'broker.log'), 'utf8') : '');
	const b = start('broker', path.join(BIN, 'broker/cpx-broker'), ['-c', 'broker.ini']);
	await waitFor(() => listening(logText(b)) > before, 15000, 'the broker to listen');
	return b;
}

async function cpx(...args) {
	return execFileP(path.join(BIN, 'client/cpx'), args, { cwd: dir,
		env: { ...process.env, CPX_BROKER: `tcp://127.0.0.1:${brokerPort}`,
			CPX_PKI: path.join(dir, 'pki') } });
}

async function shot(page, name, fullPage = false) {
	mkdirSync(SHOTS, { recursive: true });
	await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
	log(`screenshot ${name}.png`);
}

async function main() {
	dir = mkdtempSync(path.join(os.tmpdir(), 'cpx-test-console-'));
	log(`working in ${dir}`);
	await execFileP(path.join(SRC, 'certs/cpx-pki'), ['init', path.join(dir, 'pki')]);
	copyFileSync(path.join(SRC, 'broker/policy.example.ini'), path.join(dir, 'policy.ini'));
	brokerPort = await freePort();
	writeFileSync(path.join(dir, 'broker.ini'), `[broker]
listen = tcp://127.0.0.1:${brokerPort}
ca = pki/ca.pem
cert = pki/broker.pem
key = pki/broker.key
crl = pki/crl.pem
policy = policy.ini
audit_dir = audit
metrics_listen = 127.0.0.1:0
`);
	let broker = await startBroker();

	// One officer account, made as an administrator would.
	const add = start('useradd', path.join(BIN, 'console/cpx-console'),
		['user', 'add', OFFICER, '--users', 'users', '--cost', '12']);
	add.stdin.end(`${PASSWORD}\n`);
	check((await add.exited).code === 0, 'cpx-console user add creates the account');

	const con = start('console', path.join(BIN, 'console/cpx-console'), [
		'--broker', `tcp://127.0.0.1:${brokerPort}`, '--pki', 'pki',
		'--node', 'hr-ncp', '--users', 'users', '--listen', '127.0.0.1:0',
		'--regions', 'western-balkans,eu-neighbours,atlantis',
		'--web', WEB]);
	const url = await waitFor(() => (/http:\/\/[0-9.:]+\//.exec(con.stdoutText) || [])[0],
		15000, 'the console URL');
	log(`console at ${url}`);

	// The API without a browser: what must be refused.
	let r = await fetch(`${url}api/status`);
	check(r.status === 401, 'a request without a session is refused (401)');
	r = await fetch(`${url}api/login`, { method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify({ name: OFFICER, password: 'wrong-password-1' }) });
	check(r.status === 401 && (await r.json()).error === 'wrong name or password',
		'a wrong password is refused (401, "wrong name or password")');
	r = await fetch(`${url}api/login`, { method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify({ name: OFFICER, password: PASSWORD }) });
	const cookie = (r.headers.get('set-cookie') || '').split(';')[0];
	check(r.status === 200 && /HttpOnly/.test(r.headers.get('set-cookie')) &&
		/SameSite=Strict/.test(r.headers.get('set-cookie')),
		'sign-in sets an HttpOnly, SameSite=Strict session cookie');
	const csrf = (await r.json()).csrf;
	const alert = { category: 'route', severity: 'low', handling: 'network', summary: 'csrf test' };
	r = await fetch(`${url}api/publish`, { method: 'POST', headers: {
		'Content-Type': 'application/json', Cookie: cookie }, body: JSON.stringify(alert) });
	check(r.status === 403 && /CSRF/.test((await r.json()).error),
		'a publish without the CSRF token is refused (403)');
	r = await fetch(`${url}api/logout`, { method: 'POST', headers: {
		'Content-Type': 'application/json', Cookie: cookie, 'X-CSRF-Token': csrf }, body: '{}' });
	check(r.status === 200, 'sign-out with the CSRF token');
	r = await fetch(`${url}api/status`, { headers: { Cookie: cookie } });
	check(r.status === 401, 'the session cookie is dead after sign-out');
	r = await fetch(url);
	const csp = r.headers.get('content-security-policy') || '';
	check(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp) &&
		r.headers.get('x-content-type-options') === 'nosniff' &&
		r.headers.get('referrer-policy') === 'no-referrer',
		'pages carry a strict CSP, nosniff and no-referrer');

	// Repeated failures lock the name (known or not), with a reason.
	const login = name => fetch(`${url}api/login`, { method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify({ name, password: 'guess-guess-guess' }) });
	for (let i = 0; i < 5; i++)
		await login('ivan.horvat');
	r = await login('ivan.horvat');
	check(r.status === 429 && /locked for 15 more minute/.test((await r.json()).error),
		'five failed sign-ins lock the name out (429, says for how long)');
	r = await fetch(`${url}api/login`, { method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify({ name: OFFICER, password: 'x'.repeat(70000) }) });
	check(r.status === 413, 'a body over the limit is refused (413)');

	browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] });
	const page = await browser.newPage();
	await page.setViewport({ width: 1280, height: 860 });
	const cspErrors = [];
	page.on('console', m => {
		// A refused request (401, 403, 422) is logged by Chromium too:
		// expected here. Anything else (a CSP violation, a script error,
		// a missing file) is not.
		if (m.type() === 'error' &&
		    !/status of (401|403|422)/.test(m.text())) {
			cspErrors.push(m.text());
			log(`browser console: ${m.text()}`);
		}
	});
	page.on('pageerror', e => { cspErrors.push(String(e)); log(`page error: ${e}`); });

	await page.goto(url, { waitUntil: 'networkidle0' });
	await page.waitForSelector('#signin-form', { visible: true });
	await page.type('#signin-name', OFFICER);
	await page.type('#signin-password', 'not-the-password');
	await page.click('#signin-form button[type=submit]');
	await page.waitForFunction(() => document.getElementById('signin-error').textContent.length > 0);
	check((await page.$eval('#signin-error', e => e.textContent)) === 'wrong name or password',
		'the sign-in page says "wrong name or password"');
	await shot(page, 'signin');
	await page.$eval('#signin-password', e => { e.value = ''; });
	await page.type('#signin-password', PASSWORD);
	await page.click('#signin-form button[type=submit]');
	await page.waitForSelector('#tab-feed', { visible: true });
	check(await page.$eval('#officer', e => e.textContent) === OFFICER, 'signed in; the officer is named');
	await page.waitForFunction(() => document.body.dataset.session === 'connected' ||
		document.getElementById('banner').hidden, { timeout: 5000 });

	// Slovenia publishes; Croatia's officer sees it within a second.
	const { stdout } = await cpx('publish', '--node', 'si-ncp', '--id', 'si-van-1', '--category', 'vehicle',
		'--severity', 'critical', '--to', 'HR', '--handling', 'restricted',
		'--summary', 'White Iveco van, 12 persons, heading for Bregana crossing',
		'--place', 'Obrezje', '--lat', '45.8486', '--lon', '15.6919',
		'--route', 'Ljubljana @46.0569 14.5058,Novo Mesto @45.8040 15.1689,Obrezje @45.8486 15.6919');
	const acked = Date.now();
	await page.waitForSelector('#feed li.alert[data-key^="SI/"]', { timeout: 1000 })
		.catch(() => null);
	const seen = Date.now() - acked;
	check(seen <= 1000 && await page.$('#feed li.alert[data-key^="SI/"]') !== null,
		`an alert from SI appears in the feed ${seen} ms after its ack (limit 1000 ms)`);
	log(`cpx publish said: ${stdout.trim().split('\n').pop()}`);
	await cpx('publish', '--node', 'si-ncp', '--id', 'si-metlika-1', '--category', 'crossing',
		'--severity', 'medium', '--handling', 'named-only', '--to', 'HR', '--summary',
		'Group of 15 seen near the river at Metlika', '--place', 'Metlika',
		'--lat', '45.6472', '--lon', '15.3144');
	await page.waitForFunction(() => document.querySelectorAll('#feed li.alert').length >= 2,
		{ timeout: 2000 });
	// An update is shown on the alert it refers to.
	await cpx('publish', '--node', 'si-ncp', '--updates', 'si-metlika-1', '--category', 'crossing',
		'--severity', 'high', '--handling', 'named-only', '--to', 'HR', '--summary',
		'Update: the group crossed the Kupa and is walking towards Karlovac');
	await page.waitForSelector('#feed li.alert[data-key="SI/si-metlika-1"].updated', { timeout: 2000 })
		.catch(() => null);
	check(/Updated by #\d+ .*walking towards Karlovac/.test(await page.$eval(
		'#feed li.alert[data-key="SI/si-metlika-1"] .notes', e => e.textContent)),
		'an update is shown on the alert it updates');
	await shot(page, 'feed');

	// The origin-region filter, with the broker's idea of the members.
	const setFeedRegion = async v => {
		await page.$eval('#feed-filters input[name=region]', (e, x) => {
			e.value = x;
			e.dispatchEvent(new Event('change', { bubbles: true }));
		}, v);
	};
	const feedCount = re => page.waitForFunction(r => new RegExp(r)
		.test(document.getElementById('feed-count').textContent), { timeout: 5000 }, re.source)
		.then(() => true, () => false);
	await setFeedRegion('western-balkans');
	check(await feedCount(/^0 of 3 alert/), 'region western-balkans: no alert from SI shown');
	await setFeedRegion('eu-neighbours');
	check(await feedCount(/^3 of 3 alert/), 'region eu-neighbours: the alerts from SI shown');
	await cpx('publish', '--node', 'si-ncp', '--id', 'si-region-1', '--category', 'route',
		'--severity', 'low', '--summary', 'Arrives while a region filter is on');
	check(await feedCount(/^4 of 4 alert/), 'region eu-neighbours: an alert from SI that arrives is shown');
	await setFeedRegion('atlantis');
	check(await feedCount(/Region filter refused/), 'an unknown region: the refusal is shown');
	await setFeedRegion('');
	check(await feedCount(/^4 of 4 alert/), 'no region: all shown again');

	// The map: a marker per alert with coordinates; a click opens it.
	await page.click('#tabs button[data-tab=map]');
	await page.waitForSelector('path.cpx-marker', { timeout: 5000 });
	const markers = await page.$$eval('path.cpx-marker', m => m.length);
	check(markers >= 2, `markers on the map (${markers})`);
	check(await page.$('path.cpx-route') !== null, 'the route is drawn through its waypoints');
	check(await page.$eval('#map', m => !m.dataset.error), 'the border data loaded');
	await sleep(300);
	await shot(page, 'map');
	await page.click('path.cpx-marker.sev-critical');
	await page.waitForSelector('#detail[open]', { timeout: 2000 });
	check(/White Iveco van/.test(await page.$eval('#detail-body', e => e.textContent)),
		'clicking the marker opens its alert');
	await page.click('#detail .close');

	// Compose: the form refuses what the handling does not allow; the
	// broker refuses an unknown region with its reason in plain words.
	await page.click('#tabs button[data-tab=compose]');
	await page.select('#compose select[name=handling]', 'named-only');
	check(await page.$eval('#compose input[value=atlantis]', b => b.disabled),
		'named-only: the region boxes are disabled');
	await page.type('#compose textarea[name=summary]', 'Taxi driver arranging pick-ups at Karlovac station');
	await page.click('#publish');
	await page.waitForFunction(() => /Named-only needs at least one country/
		.test(document.getElementById('compose-result').textContent));
	check(true, 'the form refuses named-only without a country, in words');
	await page.select('#compose select[name=handling]', 'restricted');
	await page.click('#compose input[value=atlantis]');
	await page.click('#publish');
	await page.waitForFunction(() => /Refused by the broker/
		.test(document.getElementById('compose-result').textContent), { timeout: 10000 });
	const refusal = await page.$eval('#compose-result', e => e.textContent);
	check(/neither a country code nor a region/.test(refusal) && /unknown-recipient/.test(refusal),
		`the broker's refusal is shown in plain words: "${refusal.slice(0, 90)}..."`);
	await shot(page, 'compose', true);
	await page.click('#compose input[value=atlantis]');
	await page.type('#compose input[name=countries]', 'HR, SI');
	await page.select('#compose select[name=severity]', 'high');
	await page.type('#compose input[name=latitude]', '45.4929');
	await page.type('#compose input[name=longitude]', '15.5553');
	await page.click('#publish');
	await page.waitForFunction(() => /Published: alert/
		.test(document.getElementById('compose-result').textContent), { timeout: 10000 });
	check(true, 'a publish from the console is accepted');
	await page.click('#tabs button[data-tab=feed]');
	await page.waitForSelector('#feed li.alert[data-key^="HR/"] .author', { timeout: 3000 });
	check(await page.$eval('#feed li.alert[data-key^="HR/"] .author', e => e.textContent) === `by ${OFFICER}`,
		'the officer\'s name travels in the signed alert and is shown');
	// An "author" the page sends is replaced by the officer's name.
	const forged = await page.evaluate(async () => (await import('/util.js')).api('/api/publish',
		{ method: 'POST', body: { id: 'hr-author-1', category: 'route', severity: 'low',
			handling: 'network', summary: 'author check', author: 'someone.else' } }));
	await page.waitForSelector('#feed li.alert[data-key="HR/hr-author-1"] .author', { timeout: 3000 });
	check(forged.ok && await page.$eval('#feed li.alert[data-key="HR/hr-author-1"] .author',
		e => e.textContent) === `by ${OFFICER}`,
		'an author sent by the page is replaced by the signed-in officer\'s name');

	// The broker goes away: the page says so; it comes back and an alert
	// published meanwhile arrives without gap.
	await stop(broker);
	await page.waitForFunction(() => document.body.dataset.session === 'lost', { timeout: 10000 });
	check(/Broker session lost/.test(await page.$eval('#banner', e => e.textContent)),
		'a lost broker session is shown plainly');
	await shot(page, 'session-lost');
	await page.click('#tabs button[data-tab=compose]');
	await page.type('#compose textarea[name=summary]', 'Sent while the broker is away');
	await page.click('#publish');
	await page.waitForFunction(() => /no session to the broker/
		.test(document.getElementById('compose-result').textContent), { timeout: 5000 });
	check(true, 'a publish without a broker session is refused at once, saying why');
	await page.click('#tabs button[data-tab=feed]');
	broker = await startBroker();
	await cpx('publish', '--node', 'si-ncp', '--category', 'network', '--severity', 'high',
		'--to', 'HR', '--handling', 'restricted', '--summary', 'Published while the console was reconnecting');
	await page.waitForFunction(() => document.body.dataset.session === 'connected', { timeout: 20000 });
	await page.waitForFunction(() => [...document.querySelectorAll('#feed li.alert .summary')]
		.some(s => /while the console was reconnecting/.test(s.textContent)), { timeout: 5000 });
	check(true, 'the session resumed and the alert published meanwhile arrived');

	// History: a time range, replayed, paged and exported.
	await page.click('#tabs button[data-tab=history]');
	const from = new Date(Date.now() - 3600e3).toISOString().slice(0, 16);
	await page.$eval('#history-form input[name=from]', (e, v) => { e.value = v; }, from);
	await page.$eval('#history-form input[name=from]', e => e.dispatchEvent(new Event('input', { bubbles: true })));
	await page.click('#replay');
	await page.waitForFunction(() => /alert\(s\) shown/.test(document.getElementById('history-info').textContent),
		{ timeout: 10000 });
	const rows = await page.$$eval('#history-table tbody tr', t => t.length);
	check(rows >= 4, `the replay of the last hour lists ${rows} alert(s)`);
	const pages = await page.evaluate(async () => {
		const seqs = [];
		let after = 0;
		for (let i = 0; i < 10; i++) {
			const r = await (await fetch(`/api/history?limit=2&after=${after}`)).json();
			seqs.push(...r.items.map(d => d.seq));
			if (!r.more)
				return { seqs, pages: i + 1 };
			after = r.next_after;
		}
		return { seqs, pages: 10 };
	});
	check(pages.pages >= 3 && pages.seqs.length === new Set(pages.seqs).size &&
		pages.seqs.every((q, i) => i === 0 || q > pages.seqs[i - 1]) && pages.seqs.length >= rows,
		`history pages of 2: ${pages.pages} pages, ${pages.seqs.length} alerts, in order, none twice`);
	const csv = await page.evaluate(async () => (await fetch(document.getElementById('export-csv').href)).text());
	check(csv.startsWith('seq,accepted_at,id,origin,author') && csv.split('\r\n').length >= 6,
		'the CSV export has its header and a row per alert');
	const jsonl = await page.evaluate(async () => (await fetch(document.getElementById('export-jsonl').href)).text());
	check(jsonl.trim().split('\n').every(l => JSON.parse(l).verified === true),
		'the JSON lines export: one verified alert per line');
	await shot(page, 'history');

	// Another country's text is shown as text, never run as markup:
	// in the feed, in the detail view and in the map's tooltip.
	await cpx('publish', '--node', 'si-ncp', '--category', 'other', '--severity', 'low',
		'--to', 'HR', '--handling', 'restricted', '--lat', '46.1', '--lon', '15.0',
		'--summary', '<img id=injected src=/x onerror=alert(1)><b id=bold>markup</b>');
	await page.click('#tabs button[data-tab=feed]');
	await page.waitForFunction(() => [...document.querySelectorAll('#feed .summary')]
		.some(e => e.textContent.startsWith('<img id=injected')), { timeout: 3000 });
	await page.click('#tabs button[data-tab=map]');
	await page.waitForSelector('path.cpx-marker.sev-low', { timeout: 3000 });
	await page.hover('path.cpx-marker.sev-low');
	await page.waitForSelector('.leaflet-tooltip', { timeout: 2000 });
	await page.click('path.cpx-marker.sev-low');
	await page.waitForSelector('#detail[open]', { timeout: 2000 });
	check(await page.evaluate(() => !document.getElementById('injected') &&
		!document.getElementById('bold') &&
		/<b id=bold>/.test(document.querySelector('.leaflet-tooltip').textContent)),
		'markup in an alert is shown as text in the feed, the tooltip and the detail view');
	await page.click('#detail .close');

	// A withdrawal marks the alert it withdraws.
	await cpx('publish', '--node', 'si-ncp', '--withdraws', 'si-van-1', '--category', 'other',
		'--severity', 'low', '--to', 'HR', '--handling', 'restricted',
		'--summary', 'Withdrawn: the van was found to be legitimate');
	await page.click('#tabs button[data-tab=feed]');
	await page.waitForSelector('#feed li.alert[data-key="SI/si-van-1"].withdrawn', { timeout: 2000 })
		.catch(() => null);
	check(/Withdrawn by #\d+/.test(await page.$eval('#feed li.alert[data-key="SI/si-van-1"]',
		e => e.classList.contains('withdrawn') ? e.textContent : '')),
		'a withdrawal marks the alert it withdraws');

	// The feed resumes after the last event id the browser saw; an id
	// from another run of the console gets the whole ring.
	const feedIds = await page.evaluate(async () => {
		const ids = async hdr => {
			const ctl = new AbortController();
			const t0 = setTimeout(() => ctl.abort(), 1500);
			let text = '';
			try {
				const r = await fetch('/api/feed', { headers: hdr, signal: ctl.signal });
				const rd = r.body.getReader();
				const dec = new TextDecoder();
				for (;;) {
					const { value, done } = await rd.read();
					if (done)
						break;
					text += dec.decode(value);
				}
			} catch (e) { /* aborted: what came is in text */ }
			clearTimeout(t0);
			return [...text.matchAll(/^id: (\S+)$/mg)].map(m => m[1]);
		};
		const all = await ids({});
		return { all, after: await ids({ 'Last-Event-ID': all[1] }),
			foreign: await ids({ 'Last-Event-ID': 'deadbeef-2' }) };
	});
	check(feedIds.all.length >= 5 &&
		JSON.stringify(feedIds.after) === JSON.stringify(feedIds.all.slice(2)) &&
		JSON.stringify(feedIds.foreign) === JSON.stringify(feedIds.all),
		`the feed resumes after Last-Event-ID (${feedIds.all.length} events, ${feedIds.after.length} after the 2nd)`);

	await page.click('#tabs button[data-tab=status]');
	await page.waitForFunction(() => /connected/.test(document.getElementById('status-table').textContent));
	const status = await page.$eval('#status-table', e => e.textContent);
	check(/Certificate expires/.test(status) && /HR\/hr-ncp/.test(status) && /publish, subscribe/.test(status),
		'the status page shows node, rights and certificate dates');
	check(/Broker version\d+\.\d+\.\d+/.test(status) && /Console version\d+\.\d+\.\d+/.test(status),
		"the status page shows the broker's version (from its Welcome) and the console's");
	await shot(page, 'status');

	// A flood: the page keeps the newest FEED_MAX alerts, on the map too.
	const flood = await page.evaluate(async () => {
		const feed = await import('/feed.js');
		const n = feed.FEED_MAX + 200;
		for (let i = 0; i < n; i++)
			feed.addAlert({ seq: 1000000 + i, accepted_at: new Date().toISOString(),
				alert: { id: `flood-${i}`, origin: 'SI', category: 'route', severity: 'low',
					handling: 'network', recipients: [], summary: `flood ${i}`,
					place: { name: 'x', latitude: 45.8, longitude: 15.7 } } });
		// Polled: the rows go in at the next frame, in one batch.
		for (let t = 0; t < 100; t++) {
			const top = document.querySelector('#feed li.alert');
			if (top && top.dataset.key === `SI/flood-${n - 1}`)
				break;
			await new Promise(r => setTimeout(r, 50));
		}
		const rows = document.querySelectorAll('#feed li.alert');
		return { max: feed.FEED_MAX, rows: rows.length,
			newest: rows[0].dataset.key, oldest: rows[rows.length - 1].dataset.key,
			markers: Number(document.getElementById('map').dataset.markers) };
	});
	check(flood.rows === flood.max && flood.newest === `SI/flood-${flood.max + 199}` &&
		flood.oldest === 'SI/flood-200' && flood.markers === flood.max,
		`a flood of ${flood.max + 200} alerts leaves the newest ${flood.max} in the feed ` +
		`(${flood.rows} rows, ${flood.markers} markers)`);

	await page.click('#signout');
	await page.waitForSelector('#signin-form', { visible: true });
	r = await page.evaluate(async () => (await fetch('/api/status')).status);
	check(r === 401, 'signed out: the browser\'s session is refused');
	check(cspErrors.length === 0, `no script errors or CSP violations in the page (${cspErrors.length})`);

	// The account commands take effect at once, without a restart.
	const passwd = start('passwd', path.join(BIN, 'console/cpx-console'),
		['user', 'passwd', OFFICER, '--users', 'users', '--cost', '12']);
	passwd.stdin.end('a-new-password-2026\n');
	check((await passwd.exited).code === 0, 'cpx-console user passwd');
	const signIn = pw => fetch(`${url}api/login`, { method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify({ name: OFFICER, password: pw }) });
	check((await signIn(PASSWORD)).status === 401 &&
		(await signIn('a-new-password-2026')).status === 200,
		'after passwd only the new password signs in');
	const remove = start('remove', path.join(BIN, 'console/cpx-console'),
		['user', 'remove', OFFICER, '--users', 'users']);
	check((await remove.exited).code === 0, 'cpx-console user remove');
	check((await signIn('a-new-password-2026')).status === 401,
		'a removed account cannot sign in');

	const clog = logText(con);
	check(/officer anna.kovac: signed in/.test(clog) && /officer anna.kovac: alert .* accepted/.test(clog) &&
		/officer anna.kovac: export as csv/.test(clog), 'the node log names the officer for each action');
	check(!clog.includes(PASSWORD), 'the password never reaches the log');
	const cx = await stop(con);
	check(cx.code === 0, `cpx-console exits 0 on SIGTERM (${JSON.stringify(cx)})`);
	const bx = await stop(broker);
	check(bx.code === 0, `the broker exits 0 on SIGTERM (${JSON.stringify(bx)})`);
}

async function cleanup() {
	if (browser)
		await browser.close().catch(() => {});
	for (const p of procs.reverse())
		await stop(p).catch(() => {});
	if (dir && !process.env.CPX_KEEP)
		rmSync(dir, { recursive: true, force: true });
}

// Never leave a broker, a console or a browser behind: on a signal, and
// before ctest's own timeout (which would kill this process outright).
let cleaning = null;
const bail = why => {
	log(`FAIL: ${why}`);
	cleaning = cleaning || cleanup();
	cleaning.finally(() => process.exit(1));
};
process.on('SIGINT', () => bail('interrupted'));
process.on('SIGTERM', () => bail('terminated'));
setTimeout(() => bail('the test took over 100 s'), 100000).unref();

try {
	await main();
} catch (e) {
	failures++;
	log(`FAIL: ${e.stack || e}`);
	for (const p of procs)
		if (existsSync(p.logFile))
			console.log(`--- ${path.basename(p.logFile)}\n${readFileSync(p.logFile, 'utf8').slice(-3000)}`);
} finally {
	cleaning = cleaning || cleanup();
	await cleaning;
}
log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
