// History-API routing: paths map to page modules; links navigate without reloading.

import { h } from './dom.js';

const routes = [];
let current = null;
let outlet = null;
let guard = null;

// Register a route: a path pattern like '/crm/:crm/:model' and an async page loader.
export function route(pattern, load) {
	const names = [];
	const source = pattern.replace(/:(\w+)/g, (_, n) => {
		names.push(n);
		return '([^/]+)';
	});
	routes.push({ re: new RegExp(`^${source}/?$`), names, load });
}

// Start routing into the given element; beforeEach(path) may return another path to go to.
export function start(el, beforeEach) {
	outlet = el;
	guard = beforeEach;
	document.addEventListener('click', onClick);
	window.addEventListener('popstate', () => render());
	render();
}

// Go to a path (pushState), or replace the current entry.
export function navigate(path, { replace = false } = {}) {
	if (replace) history.replaceState(null, '', path);
	else history.pushState(null, '', path);
	render();
}

// Update the query string of the current page without re-rendering it.
export function setQuery(params) {
	const qs = new URLSearchParams();
	for (const [k, v] of Object.entries(params)) {
		if (v !== undefined && v !== null && v !== '' && v !== false) qs.set(k, v);
	}
	const search = qs.toString();
	const url = `${location.pathname}${search ? `?${search}` : ''}`;
	if (url !== location.pathname + location.search) history.replaceState(null, '', url);
}

// Follow same-origin links without reloading the page.
function onClick(e) {
	if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
	const a = e.target.closest('a[href]');
	if (!a || a.target || a.hasAttribute('download')) return;
	const url = new URL(a.href, location.href);
	if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/ui/')) return;
	e.preventDefault();
	navigate(url.pathname + url.search);
}

// Render the page of the current location, cleaning up the previous one.
async function render() {
	const redirect = guard ? guard(location.pathname) : null;
	if (redirect && redirect !== location.pathname) {
		history.replaceState(null, '', redirect);
	}
	const path = decodeURI(location.pathname);
	if (current) {
		current.controller.abort();
		for (const fn of current.cleanups) fn();
	}
	const page = { controller: new AbortController(), cleanups: [] };
	current = page;
	const ctx = {
		params: {},
		query: new URLSearchParams(location.search),
		signal: page.controller.signal,
		onCleanup: (fn) => page.cleanups.push(fn),
		navigate,
	};
	let load = null;
	for (const r of routes) {
		const m = r.re.exec(path);
		if (m) {
			r.names.forEach((n, i) => { ctx.params[n] = decodeURIComponent(m[i + 1]); });
			load = r.load;
			break;
		}
	}
	window.dispatchEvent(new CustomEvent('routechange', { detail: { path } }));
	let el;
	try {
		const mod = load ? await load() : await import('./pages/not-found.js');
		if (current !== page) return;
		el = await mod.render(ctx);
	} catch (err) {
		// A page's module can fail to arrive (the server went away): say so, in words.
		console.error(err);
		el = unavailable();
	}
	if (current !== page) return;
	outlet.replaceChildren(el);
	const title = outlet.querySelector('h1');
	if (title) {
		document.title = `${title.textContent} · CRM Dashboard`;
		title.focus({ preventScroll: true });
	}
	window.scrollTo(0, 0);
}

// The page shown when a page's code could not be loaded.
function unavailable() {
	return h('div', { class: 'page' }, h('h1', { class: 'page-title', tabindex: '-1' }, 'This page could not be opened'),
		h('div', { class: 'alert alert-error', role: 'alert' },
			'The server cannot be reached, so the page could not be loaded. Check that PostgreSQL and the dashboard are running, then reload.'));
}
