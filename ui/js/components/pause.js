// Pausing and resuming a model or a whole CRM, always with a reason.

import { rpc } from '../api.js';
import { h, replace, errorBox } from '../dom.js';
import { openModal } from './modal.js';

// "Paused by alice: API migration" (automatic pauses say so).
export function pauseText({ paused_by: by, pause_reason: reason, pause_scope: scope, pause_automatic: automatic }) {
	const who = automatic || by === 'crm_dashboard' ? 'Paused automatically' : `Paused by ${by}`;
	return `${scope === 'crm' ? 'CRM ' : ''}${who}: ${reason}`;
}

// A banner for a pause; with resume (for operators) a Resume button beside it.
export function pauseBanner(p, resume) {
	return h('div', { class: 'alert alert-info pause-banner', role: 'status', dataset: { paused: p.pause_scope || 'crm' } },
		h('strong', {}, '⏸ '), pauseText(p), ' ', resume || null);
}

// The dialog asking why, then pausing crm (model null: the whole CRM); onDone after it worked.
export function openPauseDialog({ crm, model, onDone }) {
	const what = model ? `${crm} · ${model}` : `all of ${crm}`;
	const m = openModal({ title: `Pause ${what}` });
	const reason = h('textarea', { id: 'pause-reason', rows: '3', maxlength: '500', required: true, 'aria-describedby': 'pause-help pause-error' });
	const error = h('p', { class: 'field-error', id: 'pause-error', 'aria-live': 'polite' });
	const general = h('div', { 'aria-live': 'polite' });
	const form = h('form', { id: 'pause-form', novalidate: true },
		h('p', { class: 'muted' }, model
			? 'Queued runs of this model wait, its schedules skip it (and say so), and Sync asks before starting it.'
			: 'Every model of this CRM waits: queued runs, schedules and Sync.'),
		h('div', { class: 'field' }, h('label', { for: 'pause-reason' }, 'Reason'), reason,
			h('p', { class: 'help', id: 'pause-help' }, 'Shown wherever the pause holds a run, e.g. "API migration".'), error),
		general);
	const submit = h('button', { type: 'submit', form: 'pause-form', class: 'btn btn-primary' }, '⏸ Pause');
	m.body.append(form);
	m.footer.append(h('button', { type: 'button', class: 'btn', onclick: m.close }, 'Cancel'), submit);
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		error.textContent = '';
		general.replaceChildren();
		if (!reason.value.trim()) {
			error.textContent = 'Say why: the reason is shown wherever the pause holds a run.';
			reason.setAttribute('aria-invalid', 'true');
			reason.focus();
			return;
		}
		submit.disabled = true;
		try {
			await rpc('pause_sync', { crm, model: model || null, reason: reason.value.trim() });
			m.close();
			if (onDone) onDone();
		} catch (err) {
			if (err.details === 'reason') error.textContent = err.message;
			else replace(general, errorBox(err, 'Could not pause'));
			submit.disabled = false;
		}
	});
	reason.focus();
	return m;
}

// A button resuming crm (model null: the whole CRM); errors go to errorSlot.
export function resumeButton({ crm, model, onDone, errorSlot, label = '▶ Resume' }) {
	const btn = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Resume ${model || crm}` }, label);
	btn.addEventListener('click', async () => {
		btn.disabled = true;
		try {
			await rpc('resume_sync', { crm, model: model || null });
			if (errorSlot) errorSlot.replaceChildren();
			if (onDone) onDone();
		} catch (err) {
			if (errorSlot) replace(errorSlot, errorBox(err, 'Could not resume'));
			btn.disabled = false;
		}
	});
	return btn;
}

// A button opening the pause dialog.
export function pauseButton({ crm, model, onDone, label = '⏸ Pause' }) {
	return h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Pause ${model || crm}`,
		onclick: () => openPauseDialog({ crm, model, onDone }) }, label);
}
