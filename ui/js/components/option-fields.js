// Inputs for sync options, built from the server's option list (crm_api.capabilities),
// with the options object they add up to and errors shown beside the field they name.

import { h } from '../dom.js';
import * as fmt from '../format.js';
import { optionHelp, fieldOfError } from '../capabilities.js';

// Inputs for defs ([{name, type, min, max, unit, flag, label, help}]); ids start with prefix.
export function optionFields(defs, prefix = 'opt') {
	const fields = {};
	const errors = {};
	const id = (name) => `${prefix}-${name}`;
	// the sync modal's ids (prefix "opt") stay err-<name> and help-<name>
	const sub = (kind, name) => (prefix === 'opt' ? `${kind}-${name}` : `${prefix}-${kind}-${name}`);
	const errorSlot = (name) => {
		errors[name] = h('p', { class: 'field-error', id: sub('err', name), 'aria-live': 'polite' });
		return errors[name];
	};
	const flags = defs.filter((o) => o.type === 'boolean');
	const values = defs.filter((o) => o.type !== 'boolean');

	const checks = flags.map((o) => {
		fields[o.name] = h('input', { type: 'checkbox', id: id(o.name), name: o.name });
		return h('div', { class: 'check' }, fields[o.name],
			h('label', { for: id(o.name) }, h('span', { class: 'check-label' }, o.label),
				h('span', { class: 'muted small' }, optionHelp(o))),
			errorSlot(o.name));
	});
	const inputs = values.map((o) => {
		const described = `${sub('help', o.name)} ${sub('err', o.name)}`;
		fields[o.name] = o.type === 'date'
			? h('input', { type: 'date', id: id(o.name), name: o.name, max: fmt.localDay(), 'aria-describedby': described })
			: h('input', { type: 'number', id: id(o.name), name: o.name, min: String(o.min), max: String(o.max),
				step: '1', inputmode: 'numeric', 'aria-describedby': described });
		return h('div', { class: 'field' }, h('label', { for: id(o.name) }, o.label), fields[o.name],
			h('p', { class: 'help', id: sub('help', o.name) }, optionHelp(o, fmt.int)), errorSlot(o.name));
	});

	return {
		checks,
		inputs,
		fields,
		// The options object the API takes.
		value() {
			const o = {};
			for (const f of flags) if (fields[f.name].checked) o[f.name] = true;
			for (const f of values) {
				const v = fields[f.name].value.trim();
				if (v !== '') o[f.name] = f.type === 'integer' && /^-?\d+$/.test(v) ? Number(v) : v;
			}
			return o;
		},
		clearErrors() {
			for (const [name, el] of Object.entries(errors)) {
				el.textContent = '';
				fields[name].removeAttribute('aria-invalid');
			}
		},
		// What the browser can check itself; false when something is wrong.
		checkLocally() {
			let ok = true;
			for (const f of values) {
				if (fields[f.name].validity.badInput) {
					errors[f.name].textContent = f.type === 'date' ? 'Enter a date.' : 'Enter a whole number.';
					fields[f.name].setAttribute('aria-invalid', 'true');
					ok = false;
				}
			}
			return ok;
		},
		// Show a server error beside the option its details name; false when it names none.
		showError(err) {
			const name = fieldOfError(err, Object.keys(fields));
			if (!name) return false;
			errors[name].textContent = err.hint ? `${err.message}. ${err.hint}` : err.message;
			fields[name].setAttribute('aria-invalid', 'true');
			return true;
		},
	};
}
