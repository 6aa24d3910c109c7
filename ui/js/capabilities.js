// What the server can do and which sync options it takes (crm_api.capabilities),
// fetched once per page load: forms are built from it, never from a copy here.

import { rpc } from './api.js';

let pending = null;

// The capabilities document; a failed fetch is retried on the next call.
export function capabilities() {
	if (!pending) {
		pending = rpc('capabilities', {}).catch((err) => {
			pending = null;
			throw err;
		});
	}
	return pending;
}

// The sync options the server accepts: [{name, type, min, max, unit, flag, label, help}].
export async function syncOptions() {
	return (await capabilities()).sync_options || [];
}

// The help line of an option, with its flag or its range.
export function optionHelp(o, int = String) {
	if (o.type === 'integer') return `${o.help}, ${int(o.min)} to ${int(o.max)}${o.unit ? ` ${o.unit}` : ''}`;
	return o.flag ? `${o.help} (${o.flag})` : o.help;
}

// The option or argument an API error is about: PostgREST's details field, when it names one.
export function fieldOfError(err, names) {
	return err && err.details && names.includes(err.details) ? err.details : null;
}
