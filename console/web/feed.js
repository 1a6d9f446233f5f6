// feed.js: the live feed. Verified alerts as the console receives them,
// newest first, filtered like `cpx subscribe`: origin, category and
// minimum severity in the page; origin region by asking the broker (which
// alone knows the regions' members) which of the feed's sequences match,
// through the console's history call. An update or withdrawal is also
// shown on the alert it refers to (by origin and id); one that arrives
// before its target waits for it.

import { api, el, fmtTime, alertKey, alertDetail, SEVERITIES, CATEGORIES,
	fillSelect } from './util.js';

const byKey = new Map();	// "SI/id" -> { d, li, notes }
const pendingRefs = new Map();	// target key -> [notes]
const listeners = [];
let filters = { origins: [], category: '', min: 0 };
// Origin-region filter: the region, and the sequences the broker matched.
let region = '';
let regionSeqs = null;
let regionError = '';

export function onFeedAlert(fn) { listeners.push(fn); }

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

// A new alert while a region filter is on: ask about its sequence alone.
async function checkRegion(item) {
	const r = region;
	try {
		const got = await regionMatches(r, item.d.seq, item.d.seq);
		if (region === r && regionSeqs !== null && got.has(item.d.seq)) {
			regionSeqs.add(item.d.seq);
			applyFilters();
		}
	} catch (e) { /* shown as filtered out */ }
}

function applyFilters() {
	let count = 0;
	for (const item of byKey.values()) {
		const ok = shown(item);
		item.li.hidden = !ok;
		count += ok;
	}
	document.getElementById('feed-count').textContent = regionError ?
		`Region filter refused: ${regionError}` :
		region && regionSeqs === null ? 'Asking the broker which origins are in the region…' :
		`${count} of ${byKey.size} alert(s) shown`;
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

// One delivery line from the console (same JSON as cpx subscribe --json).
export function addAlert(d) {
	const a = d.alert;
	if (!a)
		return;
	const key = alertKey(a);
	if (byKey.has(key))
		return;
	const item = { d, li: render(d), notes: [] };
	byKey.set(key, item);
	document.getElementById('feed').prepend(item.li);
	if (a.reference && a.reference.alert_id) {
		const target = `${a.origin}/${a.reference.alert_id}`;
		const withdraw = a.reference.kind === 'withdraws';
		const text = withdraw ?
			`Withdrawn by #${d.seq} at ${fmtTime(d.accepted_at)}: ${a.summary}` :
			`Updated by #${d.seq} at ${fmtTime(d.accepted_at)}: ${a.summary}`;
		const note = [text, withdraw ? 'withdrawn' : 'updated'];
		if (byKey.has(target))
			addNote(byKey.get(target), ...note);
		else
			pendingRefs.set(target, [...(pendingRefs.get(target) || []), note]);
		addNote(item, `${withdraw ? 'Withdraws' : 'Updates'} alert ${a.reference.alert_id}`, 'ref');
	}
	for (const note of pendingRefs.get(key) || [])
		addNote(item, ...note);
	pendingRefs.delete(key);
	item.li.hidden = !shown(item);
	applyFilters();
	if (region)
		checkRegion(item);
	for (const fn of listeners)
		fn(d, key);
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
