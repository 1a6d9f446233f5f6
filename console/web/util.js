// util.js: what every page of the console shares: calls to the console's
// JSON API (with the CSRF token on every state-changing request), time
// formatting, severity colours, and building DOM nodes from alert text
// (always as text, never as HTML: an alert comes from another country).

export const SEVERITIES = ['low', 'medium', 'high', 'critical'];
export const CATEGORIES = ['route', 'vehicle', 'crossing', 'network',
	'document', 'maritime', 'other'];
export const HANDLINGS = ['network', 'restricted', 'named-only'];
export const SEVERITY_COLOUR = {
	low: '#3b7dd8', medium: '#d4a000', high: '#e06a00', critical: '#c8001e'
};

let csrf = '';

export function setCsrf(token) { csrf = token || ''; }

// fetch wrapper: JSON in and out. Throws an Error whose message is the
// console's own "error" (or the status) and whose .status is the HTTP code.
export async function api(path, { method = 'GET', body } = {}) {
	const opts = { method, credentials: 'same-origin', headers: {} };
	if (body !== undefined) {
		opts.headers['Content-Type'] = 'application/json';
		opts.body = JSON.stringify(body);
	}
	if (method !== 'GET')
		opts.headers['X-CSRF-Token'] = csrf;
	const r = await fetch(path, opts);
	let data = null;
	try { data = await r.json(); } catch (e) { data = null; }
	if (!r.ok && !(data && 'ok' in data)) {
		const err = new Error((data && data.error) || `HTTP ${r.status}`);
		err.status = r.status;
		throw err;
	}
	return data;
}

// "2026-12-01 12:40:05Z" from an ISO string or ms.
export function fmtTime(t) {
	if (t === undefined || t === null || t === '')
		return '';
	const d = new Date(t);
	if (isNaN(d))
		return String(t);
	return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// <input type=datetime-local> value, read as UTC, to ISO.
export function localInputToIso(v) {
	if (!v)
		return '';
	return new Date(v + (v.length === 16 ? ':00' : '') + 'Z').toISOString();
}

// el('div', {class: 'x'}, 'text', child...): text children stay text.
export function el(tag, attrs = {}, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs)) {
		if (v === undefined || v === null || v === false)
			continue;
		if (k === 'class')
			e.className = v;
		else if (k === 'dataset')
			Object.assign(e.dataset, v);
		else
			e.setAttribute(k, v === true ? '' : v);
	}
	for (const c of children) {
		if (c === undefined || c === null || c === false)
			continue;
		e.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return e;
}

export function fillSelect(select, values) {
	for (const v of values)
		select.append(el('option', { value: v }, v));
}

export function alertKey(a) { return `${a.origin}/${a.id}`; }

// Waypoint "name @lat,lon" or "name @lat lon" (or just "lat,lon"): [lat, lon] or null.
export function waypointCoords(w) {
	const m = /(?:^|@)\s*(-?\d{1,2}(?:\.\d+)?)(?:\s*,\s*|\s+)(-?\d{1,3}(?:\.\d+)?)\s*$/.exec(w);
	if (!m)
		return null;
	const lat = Number(m[1]), lon = Number(m[2]);
	if (lat < -90 || lat > 90 || lon < -180 || lon > 180)
		return null;
	return [lat, lon];
}

// The full view of an alert for the detail dialog.
export function alertDetail(d, notes = []) {
	const a = d.alert || {};
	const rows = [
		['Sequence', d.seq], ['Accepted', fmtTime(d.accepted_at)],
		['Issued', fmtTime(a.issued_at)], ['Origin', a.origin],
		['Signed by', `${d.signer_country}/${d.signer}`],
		['Author', a.author], ['Id', a.id],
		['Category', a.category], ['Severity', a.severity],
		['Handling', a.handling],
		['Recipients', (a.recipients || []).join(', ') || 'whole network'],
		['Place', a.place && [a.place.name, a.place.crossing,
			a.place.latitude !== undefined ?
			`${a.place.latitude}, ${a.place.longitude}` : '']
			.filter(Boolean).join(' — ')],
		['Route', (a.route || []).join(' → ')],
		['Vehicles', (a.vehicles || []).map(v =>
			[v.plate, v.country, v.description].filter(Boolean)
			.join(' ')).join('; ')],
		['Persons', a.persons_count],
		['Refers to', a.reference &&
			`${a.reference.kind} ${a.reference.alert_id}`],
		['Expires', fmtTime(a.expires_at)],
	];
	const t = el('table', { class: 'kv' });
	for (const [k, v] of rows)
		if (v !== undefined && v !== null && v !== '')
			t.append(el('tr', {}, el('th', {}, k), el('td', {}, v)));
	const box = el('div', { class: `detail sev-${a.severity}` },
		el('h2', {}, `${a.origin} — ${a.severity} ${a.category}`),
		el('p', { class: 'summary' }, a.summary), t);
	for (const n of notes)
		box.append(el('p', { class: 'note' }, n));
	return box;
}
