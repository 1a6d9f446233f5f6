// compose.js: the form for a new alert. The README's handling rules are
// enforced here before anything is sent: named-only takes countries only
// (the region boxes are disabled), restricted and named-only need a
// recipient, country codes are two capital letters. The console signs and
// publishes; a refusal by the broker is shown in plain words with the
// broker's own detail beneath.

import { api, el, fillSelect, localInputToIso, CATEGORIES, SEVERITIES,
	HANDLINGS } from './util.js';

const HELP = {
	'network': 'Network: any node may receive it. Leave the recipients empty for the whole network, or name countries and regions.',
	'restricted': 'Restricted: only the countries and regions named (at least one).',
	'named-only': 'Named only: exactly the countries named (at least one); regions are not allowed.',
};

function list(v) {
	return v.split(/[\s,;]+/).map(s => s.trim()).filter(Boolean);
}

function updateHandling(form) {
	const h = form.handling.value;
	document.getElementById('handling-help').textContent = HELP[h] || '';
	for (const box of form.querySelectorAll('input[name=region]')) {
		box.disabled = h === 'named-only';
		if (box.disabled)
			box.checked = false;
	}
}

// The alert as the console's JSON (client/alert_json.h), or throws a
// sentence saying what to fix.
function buildAlert(form) {
	const h = form.handling.value;
	const countries = list(form.countries.value.toUpperCase());
	const regions = [...form.querySelectorAll('input[name=region]:checked')]
		.map(b => b.value);
	for (const c of countries)
		if (!/^[A-Z]{2}$/.test(c))
			throw `"${c}" is not a country code: use two letters such as HR.`;
	if (h === 'named-only' && regions.length)
		throw 'Named-only alerts go to countries only: untick the regions.';
	if (h === 'named-only' && !countries.length)
		throw 'Named-only needs at least one country.';
	if (h === 'restricted' && !countries.length && !regions.length)
		throw 'Restricted needs at least one country or region.';
	const summary = form.summary.value.trim();
	if (!summary)
		throw 'Write a summary.';
	const a = { category: form.category.value, severity: form.severity.value,
		handling: h, summary, recipients: [...countries, ...regions] };
	const lat = form.latitude.value.trim(), lon = form.longitude.value.trim();
	if (form.place.value.trim() || form.crossing.value.trim() || lat || lon) {
		a.place = {};
		if (form.place.value.trim())
			a.place.name = form.place.value.trim();
		if (form.crossing.value.trim())
			a.place.crossing = form.crossing.value.trim();
		if (lat || lon) {
			const la = Number(lat), lo = Number(lon);
			if (!lat || !lon || isNaN(la) || isNaN(lo) || la < -90 ||
			    la > 90 || lo < -180 || lo > 180)
				throw 'Give both latitude (-90..90) and longitude (-180..180), in degrees.';
			a.place.latitude = la;
			a.place.longitude = lo;
		}
	}
	const route = form.route.value.split('\n').map(s => s.trim()).filter(Boolean);
	if (route.length)
		a.route = route;
	const vehicles = form.vehicles.value.split('\n').map(s => s.trim())
		.filter(Boolean).map(line => {
			const [plate, country, ...rest] = line.split(';').map(s => s.trim());
			const v = { plate };
			if (country)
				v.country = country.toUpperCase();
			if (rest.length)
				v.description = rest.join('; ');
			return v;
		});
	if (vehicles.length)
		a.vehicles = vehicles;
	if (form.persons.value.trim()) {
		const n = Number(form.persons.value);
		if (!Number.isInteger(n) || n < 0)
			throw 'Persons: a whole number.';
		a.persons_count = n;
	}
	if (form.ref_id.value.trim() || form.ref_kind.value) {
		if (!form.ref_id.value.trim() || !form.ref_kind.value)
			throw 'To refer to an earlier alert give its id and whether this updates or withdraws it.';
		a.reference = { alert_id: form.ref_id.value.trim(),
			kind: form.ref_kind.value };
	}
	if (form.expires.value)
		a.expires_at = localInputToIso(form.expires.value);
	return a;
}

function show(box, cls, ...lines) {
	box.className = cls;
	box.replaceChildren(...lines.filter(Boolean).map(t => el('p', {}, t)));
}

export function initCompose(status) {
	const form = document.getElementById('compose');
	fillSelect(form.category, CATEGORIES);
	fillSelect(form.severity, SEVERITIES);
	fillSelect(form.handling, HANDLINGS);
	form.severity.value = 'medium';
	const rbox = document.getElementById('compose-regions');
	for (const r of status.regions || [])
		rbox.append(el('label', { class: 'check' },
			el('input', { type: 'checkbox', name: 'region', value: r }), r));
	form.handling.addEventListener('change', () => updateHandling(form));
	updateHandling(form);
	if (!status.rights.publish) {
		document.getElementById('publish').disabled = true;
		show(document.getElementById('compose-result'), 'refused',
			'This node has no right to publish under the broker\'s policy.');
	}
	form.addEventListener('submit', async e => {
		e.preventDefault();
		const box = document.getElementById('compose-result');
		let a;
		try {
			a = buildAlert(form);
		} catch (msg) {
			show(box, 'refused', `Not sent: ${msg}`);
			return;
		}
		show(box, 'pending', 'Signing and publishing…');
		try {
			const r = await api('/api/publish', { method: 'POST', body: a });
			if (r.ok) {
				show(box, 'accepted', `Published: alert ${r.id}, sequence ${r.seq}.`);
				form.summary.value = '';
			} else {
				show(box, 'refused', `Refused by the broker: ${r.message}`,
					r.detail ? `(${r.reason}: ${r.detail})` : `(${r.reason})`);
			}
		} catch (err) {
			show(box, 'refused', `Not published: ${err.message}`);
		}
	});
}
