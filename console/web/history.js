// history.js: replay of the broker's history that this node is entitled
// to, by time range and filters, a page at a time, and its export as JSON
// lines or CSV (the console asks the broker; each export is logged with
// the officer's name).

import { api, el, fmtTime, fillSelect, localInputToIso, CATEGORIES,
	SEVERITIES } from './util.js';

let lastQuery = null;

function query(form, after) {
	const q = new URLSearchParams();
	if (form.from.value)
		q.set('from', localInputToIso(form.from.value));
	if (form.to.value)
		q.set('to', localInputToIso(form.to.value));
	for (const k of ['origin', 'region', 'category', 'min_severity'])
		if (form[k].value.trim())
			q.set(k, k === 'origin' ? form[k].value.trim().toUpperCase() :
				form[k].value.trim());
	if (after)
		q.set('after', String(after));
	return q;
}

function updateExports(form) {
	const q = query(form, 0);
	for (const f of ['jsonl', 'csv']) {
		q.set('format', f);
		document.getElementById(`export-${f}`).href = `/api/export?${q}`;
	}
}

async function load(form, after, append) {
	const info = document.getElementById('history-info');
	const tbody = document.querySelector('#history-table tbody');
	const next = document.getElementById('history-next');
	const q = query(form, after);
	q.set('limit', '50');
	info.textContent = 'Replaying…';
	try {
		const r = await api(`/api/history?${q}`);
		if (!append)
			tbody.replaceChildren();
		for (const d of r.items) {
			const a = d.alert || {};
			tbody.append(el('tr', { class: `sev-${a.severity}` },
				el('td', {}, d.seq), el('td', {}, fmtTime(d.accepted_at)),
				el('td', {}, a.origin), el('td', { class: 'sev' }, a.severity),
				el('td', {}, a.category), el('td', {}, a.handling),
				el('td', {}, a.author || ''), el('td', {}, a.summary)));
		}
		const shown = tbody.children.length;
		info.textContent = `${shown} alert(s) shown` +
			(r.more ? `, more after sequence ${r.next_after}` : ', end of history');
		next.hidden = !r.more;
		lastQuery = r.more ? r.next_after : null;
	} catch (e) {
		info.textContent = `Replay failed: ${e.message}`;
	}
}

export function initHistory(status) {
	const form = document.getElementById('history-form');
	fillSelect(form.category, CATEGORIES);
	fillSelect(form.min_severity, SEVERITIES);
	const dl = document.getElementById('region-list');
	for (const r of status.regions || [])
		dl.append(el('option', { value: r }));
	form.addEventListener('input', () => updateExports(form));
	updateExports(form);
	form.addEventListener('submit', e => {
		e.preventDefault();
		load(form, 0, false);
	});
	document.getElementById('history-next').addEventListener('click', () => {
		if (lastQuery)
			load(form, lastQuery, true);
	});
}
