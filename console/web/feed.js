// feed.js: the live feed. Verified alerts as the console receives them,
// newest first, filtered like `cpx subscribe`: origin, category and
// minimum severity in the page; origin region by asking the broker (which
// alone knows the regions' members) which of the feed's sequences match,
// through the console's history call. An update or withdrawal is also
// shown on the alert it refers to (by origin and id); one that arrives
// before its target waits for it.
//
// Bounded, and batched: alerts that arrive are queued and put into the
// page in one go at the next animation frame, but at most every FLUSH_MS
// (one DOM insertion, one count update, one region question to the broker
// however many arrived: redrawing the whole list 60 times a second is what
// a flood would otherwise cost), and the page keeps the newest FEED_MAX;
// older ones leave the page (and the map) and remain in History. So a flood of 1,000 alerts/s neither freezes the
// page nor grows its memory (bench/console.sh measures it).

import { api, el, fmtTime, alertKey, alertDetail, SEVERITIES, CATEGORIES,
	fillSelect } from './util.js';

// Alerts kept in the page, and queued while the page is not drawn (a
// hidden tab gets no animation frames; its timers run at least once a
// minute): beyond that the oldest go first.
export const FEED_MAX = 1000;
const QUEUE_MAX = 4 * FEED_MAX;
const FLUSH_MS = 100;

const byKey = new Map();	// "SI/id" -> { d, li, notes }, oldest first
const pendingRefs = new Map();	// target key -> [notes]
const listeners = [];
const evictListeners = [];
const queue = [];		// deliveries not in the page yet, oldest first
let flushPending = false;
let lastFlush = -Infinity;
let dropped = 0;		// left out of the page in a flood
let filters = { origins: [], category: '', min: 0 };
// Origin-region filter: the region, and the sequences the broker matched.
let region = '';
let regionSeqs = null;
let regionError = '';

export function onFeedAlert(fn) { listeners.push(fn); }
// fn(key) when an alert leaves the page (FEED_MAX newer ones came).
export function onFeedEvict(fn) { evictListeners.push(fn); }

export function openAlert(key) {
	const item = byKey.get(key);
	if (!item)
		return;
	const body = document.getElementById('detail-body');
	body.replaceChildren(alertDetail(item.d, item.notes));
	const dlg = document.getElementById('detail');
	if (!dlg.open)
		dlg.showModal();
}

function matches(a) {
	if (filters.origins.length && !filters.origins.includes(a.origin))
		return false;
	if (filters.category && a.category !== filters.category)
		return false;
	if (filters.min && SEVERITIES.indexOf(a.severity) + 1 < filters.min)
		return false;
	return true;
}

function shown(item) {
	return matches(item.d.alert) &&
		(!region || (regionSeqs !== null && regionSeqs.has(item.d.seq)));
}

// Sequences in [from, to] whose origin is a member of r, as the broker
// says; pages of 200.
async function regionMatches(r, from, to) {
	const seqs = new Set();
	let after = from - 1;
	for (;;) {
		const q = new URLSearchParams({ region: r, after: String(after),
			to_seq: String(to), limit: '200' });
		const page = await api(`/api/history?${q}`);
		for (const d of page.items)
			seqs.add(d.seq);
		if (!page.more)
			return seqs;
		after = page.next_after;
	}
}

async function setRegion(r) {
	region = r;
	regionSeqs = null;
	regionError = '';
	applyFilters();
	if (!r || !byKey.size)
		return;
	const seqs = [...byKey.values()].map(i => i.d.seq);
	try {
		const got = await regionMatches(r, Math.min(...seqs), Math.max(...seqs));
		if (region === r)
			regionSeqs = got;
	} catch (e) {
		if (region === r)
			regionError = e.message;
	}
	applyFilters();
}

// New alerts while a region filter is on: ask about their sequences, one
// question at a time (those that arrive meanwhile wait for the next).
let regionAsk = null;		// { from, to, seqs } not asked yet
let regionAsking = false;

async function checkRegion(items) {
	for (const item of items) {
		const s = item.d.seq;
		regionAsk = regionAsk ? { from: Math.min(regionAsk.from, s),
			to: Math.max(regionAsk.to, s), seqs: regionAsk.seqs.add(s) } :
			{ from: s, to: s, seqs: new Set([s]) };
	}
	if (regionAsking)
		return;
	regionAsking = true;
	while (regionAsk) {
		const { from, to, seqs } = regionAsk;
		const r = region;
		regionAsk = null;
		try {
			const got = await regionMatches(r, from, to);
			if (region === r && regionSeqs !== null) {
				for (const s of got)
					if (seqs.has(s))
						regionSeqs.add(s);
				applyFilters();
			}
		} catch (e) { /* shown as filtered out */ }
	}
	regionAsking = false;
}

function showCount() {
	let count = 0;
	for (const item of byKey.values())
		count += !item.li.hidden;
	document.getElementById('feed-count').textContent = regionError ?
		`Region filter refused: ${regionError}` :
		region && regionSeqs === null ? 'Asking the broker which origins are in the region…' :
		`${count} of ${byKey.size} alert(s) shown` +
		(byKey.size >= FEED_MAX ? ` (the newest ${FEED_MAX}; older ones are in History)` : '') +
		(dropped ? `; ${dropped} arrived too fast to be shown here (see History)` : '');
}

function applyFilters() {
	for (const item of byKey.values())
		item.li.hidden = !shown(item);
	showCount();
}

function addNote(item, text, cls) {
	item.notes.push(text);
	item.li.querySelector('.notes').append(el('li', { class: cls }, text));
	if (cls === 'withdrawn')
		item.li.classList.add('withdrawn');
	if (cls === 'updated')
		item.li.classList.add('updated');
}

function render(d) {
	const a = d.alert;
	const li = el('li', { class: `alert sev-${a.severity}`, tabindex: '0',
		dataset: { key: alertKey(a), seq: String(d.seq) } },
		el('div', { class: 'head' },
			el('span', { class: 'origin' }, a.origin),
			el('span', { class: 'sev' }, a.severity),
			el('span', { class: 'cat' }, a.category),
			el('span', { class: 'handling' }, a.handling),
			el('time', {}, fmtTime(d.accepted_at)),
			a.author ? el('span', { class: 'author' }, `by ${a.author}`) : null,
			d.replayed ? el('span', { class: 'tag' }, 'history') : null),
		el('p', { class: 'summary' }, a.summary),
		el('ul', { class: 'notes' }));
	li.addEventListener('click', () => openAlert(alertKey(a)));
	li.addEventListener('keydown', e => {
		if (e.key === 'Enter')
			openAlert(alertKey(a));
	});
	return li;
}

// Take one alert into byKey (its row not in the page yet). null if known.
function take(d) {
	const a = d.alert;
	const key = alertKey(a);
	if (byKey.has(key))
		return null;
	const item = { d, key, li: render(d), notes: [] };
	byKey.set(key, item);
	if (a.reference && a.reference.alert_id) {
		const target = `${a.origin}/${a.reference.alert_id}`;
		const withdraw = a.reference.kind === 'withdraws';
		const text = withdraw ?
			`Withdrawn by #${d.seq} at ${fmtTime(d.accepted_at)}: ${a.summary}` :
			`Updated by #${d.seq} at ${fmtTime(d.accepted_at)}: ${a.summary}`;
		const note = [text, withdraw ? 'withdrawn' : 'updated'];
		if (byKey.has(target))
			addNote(byKey.get(target), ...note);
		else {
			pendingRefs.set(target, [...(pendingRefs.get(target) || []), note]);
			// Notes for alerts never seen: bounded like the feed.
			if (pendingRefs.size > FEED_MAX)
				pendingRefs.delete(pendingRefs.keys().next().value);
		}
		addNote(item, `${withdraw ? 'Withdraws' : 'Updates'} alert ${a.reference.alert_id}`, 'ref');
	}
	for (const note of pendingRefs.get(key) || [])
		addNote(item, ...note);
	pendingRefs.delete(key);
	item.li.hidden = !shown(item);
	return item;
}

// The oldest alerts leave the page once more than FEED_MAX are in it.
function evict() {
	for (const [key, item] of byKey) {
		if (byKey.size <= FEED_MAX)
			break;
		item.li.remove();
		byKey.delete(key);
		if (regionSeqs !== null)
			regionSeqs.delete(item.d.seq);
		for (const fn of evictListeners)
			fn(key);
	}
}

// Put what arrived since the last frame into the page, newest on top.
function flush() {
	if (!flushPending)
		return;
	flushPending = false;
	lastFlush = performance.now();
	let batch = queue.splice(0);
	if (batch.length > FEED_MAX) {
		dropped += batch.length - FEED_MAX;
		batch = batch.slice(-FEED_MAX);
	}
	const frag = document.createDocumentFragment();
	const added = [];
	for (const d of batch) {
		const item = take(d);
		if (item) {
			frag.prepend(item.li);
			added.push(item);
		}
	}
	document.getElementById('feed').prepend(frag);
	evict();
	showCount();
	if (region && added.length)
		checkRegion(added.filter(i => byKey.has(i.key)));
	for (const item of added)
		if (byKey.has(item.key))
			for (const fn of listeners)
				fn(item.d, item.key);
}

// One delivery line from the console (same JSON as cpx subscribe --json).
export function addAlert(d) {
	if (!d.alert)
		return;
	queue.push(d);
	if (queue.length > QUEUE_MAX) {
		dropped += queue.length - QUEUE_MAX;
		queue.splice(0, queue.length - QUEUE_MAX);
	}
	if (!flushPending) {
		// The first alert after a quiet spell goes in at the next frame.
		const wait = Math.max(0, lastFlush + FLUSH_MS - performance.now());
		flushPending = true;
		setTimeout(() => requestAnimationFrame(flush), wait);
		setTimeout(flush, wait + 250);	// no frames in a hidden tab
	}
}

export function initFeed(subscription, regions) {
	const form = document.getElementById('feed-filters');
	fillSelect(form.category, CATEGORIES);
	fillSelect(form.min_severity, SEVERITIES);
	const dl = document.getElementById('feed-region-list');
	for (const r of regions || [])
		dl.append(el('option', { value: r }));
	form.region.addEventListener('change', () =>
		setRegion(form.region.value.trim()));
	document.getElementById('feed-sub').textContent = subscription;
	form.addEventListener('input', () => {
		filters = {
			origins: form.origin.value.toUpperCase().split(/[\s,]+/)
				.filter(Boolean),
			category: form.category.value,
			min: SEVERITIES.indexOf(form.min_severity.value) + 1,
		};
		applyFilters();
	});
	form.addEventListener('submit', e => e.preventDefault());
}
