// Entry point: the page frame (header, live indicator, sign-out) and the routes.

import { session, logout, onSignOut, restoreSession } from './api.js';
import { route, start, navigate } from './router.js';
import * as live from './live.js';
import { mountBell } from './components/alerts.js';

route('/login', () => import('./pages/login.js'));
route('/', () => import('./pages/overview.js'));
route('/crm/:crm', () => import('./pages/crm.js'));
route('/crm/:crm/:model', () => import('./pages/model.js'));
route('/history', () => import('./pages/history.js'));
route('/history/:id', () => import('./pages/run.js'));
route('/schedules', () => import('./pages/schedules.js'));
route('/analytics', () => import('./pages/analytics.js'));
route('/failures', () => import('./pages/failures.js'));
route('/alerts', () => import('./pages/alerts.js'));
route('/alerts/settings', () => import('./pages/alert-settings.js'));
route('/alerts/:id', () => import('./pages/alerts.js'));

const topbar = document.getElementById('topbar');
const liveState = document.getElementById('live-state');
const refreshBell = mountBell(document.getElementById('bell-slot'));
const ROLE_NAMES = { crm_dashboard_viewer: 'viewer', crm_dashboard_operator: 'operator', crm_dashboard_admin: 'admin' };

// Show the header for a signed-in user, with their name and role.
function paintFrame() {
	const s = session();
	topbar.hidden = !s;
	document.getElementById('user').textContent = s ? `${s.username} · ${ROLE_NAMES[s.role] || s.role}` : '';
}

// Signed-out visitors go to /login (remembering where they were going).
function guard(path) {
	const s = session();
	if (!s && path !== '/login') {
		return `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
	}
	if (s && path === '/login') return '/';
	return null;
}

live.onState((state) => {
	liveState.dataset.state = state;
	liveState.textContent = { live: 'Live', connecting: 'Connecting…', polling: 'Polling every 3 s', offline: 'Server unreachable, retrying', off: '' }[state];
	liveState.title = {
		live: 'Updates arrive as they happen.',
		polling: 'The live stream is unavailable; refreshing every 3 seconds instead.',
		offline: 'The dashboard server does not answer; figures on this page may be out of date.',
	}[state] || '';
});

window.addEventListener('routechange', (e) => {
	paintFrame();
	const path = e.detail.path;
	const section = ['history', 'schedules', 'analytics', 'failures', 'alerts'].find((n) => path.startsWith(`/${n}`)) || 'overview';
	for (const a of topbar.querySelectorAll('[data-nav]')) {
		if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
		else a.removeAttribute('aria-current');
	}
	if (session() && liveState.dataset.state === 'off') live.connect();
	if (session()) refreshBell();
});

document.getElementById('logout').addEventListener('click', () => logout());
onSignOut((reason) => {
	live.disconnect();
	paintFrame();
	const why = reason === 'expired' ? '&expired=1' : '';
	if (location.pathname !== '/login') navigate(`/login?next=${encodeURIComponent(location.pathname)}${why}`, { replace: true });
});

await restoreSession();
paintFrame();
start(document.getElementById('main'), guard);
