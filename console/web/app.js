// app.js: the console's single page. Signs the officer in and out, keeps
// the CSRF token in memory (never in storage), switches between the
// pages, opens the live feed (Server-Sent Events: the browser resumes
// from the last event id by itself) and shows the broker session's state
// plainly when it is lost and when it is back.

import { api, setCsrf, el, fmtTime } from './util.js';
import { initFeed, addAlert } from './feed.js';
import { initMap, showMap } from './map.js';
import { initCompose } from './compose.js';
import { initHistory } from './history.js';

let feed = null;
let started = false;

function $(id) { return document.getElementById(id); }

function showTab(name) {
	for (const s of document.querySelectorAll('section.tab'))
		s.hidden = s.id !== `tab-${name}`;
	for (const b of document.querySelectorAll('#tabs button'))
		b.classList.toggle('active', b.dataset.tab === name);
	if (name === 'map')
		showMap();
	if (name === 'status')
		refreshStatus();
}

function banner(state) {
	const b = $('banner');
	if (state.connected) {
		b.hidden = true;
		b.textContent = '';
		document.body.dataset.session = 'connected';
		return;
	}
	b.hidden = false;
	b.className = 'banner down';
	b.textContent = state.ended ?
		`The session to the broker has ended: ${state.text}. Alerts are not arriving; call the node's administrator.` :
		`Broker session lost since ${fmtTime(state.since)}: ${state.text}. Alerts will follow, without gap, once it is back.`;
	document.body.dataset.session = state.ended ? 'ended' : 'lost';
}

function signedOut(message) {
	if (feed) {
		feed.close();
		feed = null;
	}
	setCsrf('');
	$('tabs').hidden = true;
	$('who').hidden = true;
	for (const s of document.querySelectorAll('section.tab'))
		s.hidden = true;
	$('signin').hidden = false;
	$('signin-error').textContent = message || '';
	document.body.dataset.signedIn = 'no';
}

function openFeed() {
	feed = new EventSource('/api/feed');
	feed.addEventListener('alert', e => addAlert(JSON.parse(e.data)));
	feed.addEventListener('state', e => banner(JSON.parse(e.data)));
	feed.addEventListener('signedout', () =>
		signedOut('You were signed out after a period without activity.'));
	feed.onerror = async () => {
		if (feed && feed.readyState === EventSource.CLOSED) {
			try {
				await api('/api/session');
				setTimeout(openFeed, 2000);
			} catch (e) {
				signedOut('Your session has ended: sign in again.');
			}
		}
	};
}

async function refreshStatus() {
	let s;
	try {
		s = await api('/api/status');
	} catch (e) {
		if (e.status === 401)
			signedOut('Your session has ended: sign in again.');
		return null;
	}
	const rights = Object.entries(s.rights).filter(([, v]) => v)
		.map(([k]) => k).join(', ') || 'none';
	const rows = [
		['Officer', s.officer], ['Node', `${s.country}/${s.node}`],
		['Broker session', s.connected ? 'connected' : `down: ${s.state}`],
		['Since', fmtTime(s.state_since)],
		['Broker', `${s.broker_name || '?'} at ${s.broker}`],
		['Broker version', s.broker_version || 'not announced (a broker before cpx 0.2)'],
		['Console version', s.console_version],
		['Last sequence', s.last_seq], ['Rights', rights],
		['Certificate expires', s.cert_expiry],
		['CRL next update', s.crl_next_update],
		['Session losses (and failed retries)', s.reconnects],
		['Alerts not shown (failed verification)', s.unverified],
		['Live feeds open', s.feed_clients],
	];
	$('status-table').querySelector('tbody').replaceChildren(...rows.map(
		([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v))));
	return s;
}

async function signedIn(who) {
	setCsrf(who.csrf);
	$('signin').hidden = true;
	$('tabs').hidden = false;
	$('who').hidden = false;
	$('officer').textContent = who.name;
	document.body.dataset.signedIn = 'yes';
	const s = await refreshStatus();
	if (!s)
		return;
	$('node-name').textContent = `${s.country}/${s.node}`;
	if (!started) {
		started = true;
		initFeed(s.subscription || 'every alert this node may receive', s.regions);
		await initMap();
		initCompose(s);
		initHistory(s);
	}
	showTab('feed');
	openFeed();
}

async function main() {
	for (const b of document.querySelectorAll('#tabs button'))
		b.addEventListener('click', () => showTab(b.dataset.tab));
	$('signin-form').addEventListener('submit', async e => {
		e.preventDefault();
		$('signin-error').textContent = '';
		try {
			const who = await api('/api/login', { method: 'POST', body: {
				name: $('signin-name').value, password: $('signin-password').value } });
			$('signin-password').value = '';
			await signedIn(who);
		} catch (err) {
			$('signin-error').textContent = err.message;
		}
	});
	$('signout').addEventListener('click', async () => {
		try {
			await api('/api/logout', { method: 'POST', body: {} });
		} catch (e) { /* signed out anyway */ }
		signedOut('Signed out.');
	});
	try {
		await signedIn(await api('/api/session'));
	} catch (e) {
		signedOut('');
	}
}

main();
