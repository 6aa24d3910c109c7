// The status language: an icon, a colour and always a text label.

const STATUS = {
	success: { icon: '✅', label: 'Success', tone: 'success' },
	partial: { icon: '⚠️', label: 'Partial', tone: 'warning' },
	warning: { icon: '⚠️', label: 'Warning', tone: 'warning' },
	failed: { icon: '❌', label: 'Failed', tone: 'danger' },
	error: { icon: '❌', label: 'Failed', tone: 'danger' },
	running: { icon: '🔄', label: 'Running', tone: 'info', pulse: true },
	queued: { icon: '⏳', label: 'Queued', tone: 'info', pulse: true },
	cancelled: { icon: '⏹️', label: 'Cancelled', tone: 'muted' },
	never: { icon: '⏸️', label: 'Never synced', tone: 'muted' },
};

// Every status a run can have, in the order filters list them.
export const RUN_STATUSES = ['queued', 'running', 'success', 'partial', 'failed', 'cancelled'];

// The label of a status ("Never synced" for null).
export function statusLabel(status) {
	return (STATUS[status || 'never'] || { label: status }).label;
}

// True while a run is queued or running.
export function isActive(status) {
	return status === 'queued' || status === 'running';
}

// A badge element for a run status or a health value; null means never synced.
export function badge(status) {
	const s = STATUS[status || 'never'] || { icon: '•', label: String(status), tone: 'muted' };
	const el = document.createElement('span');
	el.className = `badge badge-${s.tone}${s.pulse ? ' badge-pulse' : ''}`;
	el.dataset.status = status || 'never';
	const icon = document.createElement('span');
	icon.className = 'badge-icon';
	icon.setAttribute('aria-hidden', 'true');
	icon.textContent = s.icon;
	el.append(icon, document.createTextNode(s.label));
	if (s.pulse) {
		// Keep the animation's phase on the wall clock so that a badge re-created
		// by a live update carries on smoothly instead of restarting.
		el.style.animationDelay = `${-(Date.now() % 1600)}ms`;
		icon.style.animationDelay = `${-(Date.now() % 2400)}ms`;
	}
	return el;
}
