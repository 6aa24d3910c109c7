// An accessible modal dialog: native <dialog>, focus kept inside, Escape closes, focus restored.

import { h } from '../dom.js';

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])';

// Open a modal; returns {dialog, body, footer, close}. onClose runs once when it closes.
export function openModal({ title, wide = false, onClose } = {}) {
	const opener = document.activeElement;
	const heading = h('h2', { class: 'modal-title', id: `modal-title-${Date.now()}` }, title);
	const closeBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-icon', 'aria-label': 'Close dialog' }, '✕');
	const body = h('div', { class: 'modal-body' });
	const footer = h('div', { class: 'modal-footer' });
	const dialog = h('dialog', { class: ['modal', wide && 'modal-wide'], 'aria-labelledby': heading.id },
		h('div', { class: 'modal-header' }, heading, closeBtn), body, footer);
	let closed = false;

	// Close once: remove the dialog, run onClose, give focus back.
	function close() {
		if (closed) return;
		closed = true;
		window.removeEventListener('routechange', close);
		dialog.close();
		dialog.remove();
		if (onClose) onClose();
		restoreFocus(opener);
	}
	closeBtn.addEventListener('click', close);
	dialog.addEventListener('cancel', (e) => {
		e.preventDefault();
		close();
	});
	dialog.addEventListener('click', (e) => {
		if (e.target === dialog) close();
	});
	// Keep Tab and Shift+Tab cycling inside the dialog.
	dialog.addEventListener('keydown', (e) => {
		if (e.key !== 'Tab') return;
		const items = [...dialog.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null);
		if (!items.length) return;
		const first = items[0];
		const last = items[items.length - 1];
		if (e.shiftKey && document.activeElement === first) {
			e.preventDefault();
			last.focus();
		} else if (!e.shiftKey && document.activeElement === last) {
			e.preventDefault();
			first.focus();
		}
	});
	// Leaving the page (a link, Back) closes the dialog too.
	window.addEventListener('routechange', close);
	document.body.append(dialog);
	dialog.showModal();
	return { dialog, body, footer, heading, close };
}

// A modal showing a long text (a run's log) in a scrollable, selectable block.
export function openTextModal(title, loadText) {
	const m = openModal({ title, wide: true });
	const pre = h('pre', { class: 'log log-full', tabindex: '0' }, 'Loading…');
	m.body.append(pre);
	m.footer.append(h('button', { type: 'button', class: 'btn', onclick: m.close }, 'Close'));
	Promise.resolve(loadText()).then(
		(text) => { pre.textContent = text || '(the log is empty)'; },
		(err) => { pre.textContent = `Could not load: ${err.message}`; pre.classList.add('log-error'); },
	);
	return m;
}

// Give focus back to the control that opened a dialog, or to its twin when a
// live update re-created it meanwhile (same accessible label).
function restoreFocus(opener) {
	if (!opener || !opener.focus) return;
	if (opener.isConnected) {
		opener.focus();
		return;
	}
	const label = opener.getAttribute('aria-label');
	const twin = label ? document.querySelector(`[aria-label="${CSS.escape(label)}"]`) : null;
	if (twin) twin.focus();
}
