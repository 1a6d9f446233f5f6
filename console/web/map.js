// map.js: the region on a map drawn from Natural Earth borders (the
// world-atlas package, served by the console: no tile server, nothing
// fetched from elsewhere). Alerts with coordinates are markers coloured
// by severity; a route is a line through its waypoints that carry
// coordinates ("name @lat,lon"). Clicking a marker opens the alert. An
// alert that leaves the live feed (feed.js keeps the newest FEED_MAX)
// leaves the map too.

import * as L from '/vendor/leaflet.js';
import { SEVERITY_COLOUR, waypointCoords, el } from './util.js';
import { onFeedAlert, onFeedEvict, openAlert } from './feed.js';

let map = null;
let count = 0;
const layers = new Map();	// alert key -> { marker, route }

function addToMap(d, key) {
	const a = d.alert;
	const colour = SEVERITY_COLOUR[a.severity] || '#555';
	const pts = [];
	const mine = {};
	if (a.place && a.place.latitude !== undefined) {
		const m = mine.marker = L.circleMarker([a.place.latitude, a.place.longitude], {
			radius: 9, color: '#222', weight: 1, fillColor: colour,
			fillOpacity: 0.9, className: `cpx-marker sev-${a.severity}`,
		}).addTo(map);
		// A node, not a string: Leaflet would take a string as HTML.
		m.bindTooltip(el('span', {},
			`${a.origin} ${a.severity} ${a.category}: ${a.summary.slice(0, 80)}`));
		m.on('click', () => openAlert(key));
		pts.push([a.place.latitude, a.place.longitude]);
		count++;
	}
	const route = (a.route || []).map(waypointCoords).filter(Boolean);
	if (route.length >= 2) {
		mine.route = L.polyline(route, { color: colour, weight: 3, opacity: 0.8,
			className: 'cpx-route' }).addTo(map)
			.on('click', () => openAlert(key));
	}
	if (mine.marker || mine.route)
		layers.set(key, mine);
	document.getElementById('map').dataset.markers = String(count);
}

function removeFromMap(key) {
	const mine = layers.get(key);
	if (!mine)
		return;
	layers.delete(key);
	if (mine.marker) {
		mine.marker.remove();
		count--;
	}
	if (mine.route)
		mine.route.remove();
	document.getElementById('map').dataset.markers = String(count);
}

export async function initMap() {
	map = L.map('map', { zoomControl: true, attributionControl: true,
		preferCanvas: false }).setView([44.3, 17.5], 6);
	map.attributionControl.setPrefix(false);
	map.attributionControl.addAttribution('Borders: Natural Earth');
	try {
		const r = await fetch('/vendor/countries-50m.json');
		const topo = await r.json();
		const land = window.topojson.feature(topo, topo.objects.countries);
		L.geoJSON(land, { style: { color: '#6b7b8c', weight: 1,
			fillColor: '#eef1e6', fillOpacity: 1 },
			interactive: false }).addTo(map);
	} catch (e) {
		document.getElementById('map').dataset.error = String(e);
	}
	onFeedAlert(addToMap);
	onFeedEvict(removeFromMap);
}

// Leaflet must measure its box again once the tab is visible.
export function showMap() {
	if (map)
		map.invalidateSize();
}
