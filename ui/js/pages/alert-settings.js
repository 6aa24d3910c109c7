// Alert rules and channels: everyone sees them (channels without their
// secrets, with their delivery health); administrators add and remove
// them, switch them on and off, and send a test to a channel.

import { get, rpc, session } from '../api.js';
import { h, replace, loading, empty, errorBox, pageTitle } from '../dom.js';
import { ago } from '../components/ago.js';
import { severityBadge } from '../components/alerts.js';

const KINDS = [['webhook', 'Webhook (signed JSON)'], ['slack', 'Slack incoming webhook'], ['email', 'E-mail (SMTP)']];
const URL_HINTS = {
	webhook: 'https://alerts.example.com/hook',
	slack: 'https://hooks.slack.com/services/…',
	email: 'smtp://mail.example.com:587',
};

// Render the rules and channels page.
export function render(ctx) {
	const admin = session()?.role === 'crm_dashboard_admin';
	const rulesSlot = h('div', {}, loading('Loading rules…'));
	const channelsSlot = h('div', {}, loading('Loading channels…'));
	const errorSlot = h('div', { 'aria-live': 'polite' });
	const ruleForm = h('div');
	const channelForm = h('div');
	let watches = [];
	let channels = [];
	let repaintChannelChoices = null;
	// the last test's outcome per channel, kept across repaints
	const testResults = new Map();

	// Fetch rules, channels and the watches; paint them.
	async function load() {
		try {
			[watches, channels] = await Promise.all([
				watches.length ? watches : get('alert_watches', {}, { signal: ctx.signal }),
				get('alert_channels', { order: 'name.asc' }, { signal: ctx.signal })]);
			const rules = await get('alert_rules', {}, { signal: ctx.signal });
			paintRules(rules);
			paintChannels(channels);
			if (repaintChannelChoices) repaintChannelChoices();
			if (admin && !ruleForm.firstChild) ruleForm.append(await newRuleForm());
			if (admin && !channelForm.firstChild) channelForm.append(newChannelForm());
		} catch (err) {
			if (err.name !== 'AbortError') replace(errorSlot, errorBox(err, 'Could not load the alert settings'));
		}
	}

	// A button that calls fn, then reloads; errors show above the tables.
	function action(label, aria, cls, fn, what) {
		const btn = h('button', { type: 'button', class: `btn btn-small ${cls || ''}`, 'aria-label': aria }, label);
		btn.addEventListener('click', async () => {
			btn.disabled = true;
			errorSlot.replaceChildren();
			try {
				await fn(btn);
				load();
			} catch (err) {
				replace(errorSlot, errorBox(err, `Could not ${what}`));
				btn.disabled = false;
			}
		});
		return btn;
	}

	// The rules table.
	function paintRules(rules) {
		if (!rules.length) {
			replace(rulesSlot, empty('No alert rules yet.', admin ? 'Add one below: what to watch, for which CRM or model, and where to send it.' : 'An administrator can add one.'));
			return;
		}
		const label = Object.fromEntries(watches.map((w) => [w.watch, w.label]));
		replace(rulesSlot, h('div', { class: 'table-wrap' }, h('table', { class: 'table stack-mobile' },
			h('thead', {}, h('tr', {}, ['Rule', 'Watches', 'Scope', 'Severity', 'Channels', 'Open alerts', admin ? 'Actions' : null]
				.filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, rules.map((r) => h('tr', { dataset: { rule: r.id } },
				h('td', { 'data-label': 'Rule' }, h('strong', {}, r.name), r.enabled ? null : h('span', { class: 'muted small' }, ' (off)')),
				h('td', { 'data-label': 'Watches' }, label[r.watch] || r.watch,
					Object.keys(r.params || {}).length ? h('div', { class: 'muted small mono' }, Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(', ')) : null),
				h('td', { 'data-label': 'Scope' }, r.model ? `${r.crm} · ${r.model}` : r.crm ? `${r.crm} (every model)` : 'everything'),
				h('td', { 'data-label': 'Severity' }, severityBadge(r.severity)),
				h('td', { 'data-label': 'Channels' }, r.channels.length ? r.channels.join(', ') : h('span', { class: 'muted' }, 'none (dashboard only)')),
				h('td', { 'data-label': 'Open alerts' }, h('a', { href: `/alerts?status=unresolved` }, String(r.open_alerts))),
				admin ? h('td', { 'data-label': 'Actions' },
					action(r.enabled ? 'Turn off' : 'Turn on', `${r.enabled ? 'Turn off' : 'Turn on'} rule ${r.name}`, '',
						() => rpc('update_alert_rule', { id: r.id, enabled: !r.enabled }), 'change the rule'),
					' ',
					action('Delete', `Delete rule ${r.name}`, 'btn-danger', () => rpc('delete_alert_rule', { id: r.id }), 'delete the rule')) : null))))));
	}

	// The channels table, with each channel's health.
	function paintChannels(rows) {
		if (!rows.length) {
			replace(channelsSlot, empty('No channels yet.', admin ? 'Add a webhook, a Slack incoming webhook or an e-mail address below.' : 'An administrator can add one.'));
			return;
		}
		replace(channelsSlot, h('div', { class: 'table-wrap' }, h('table', { class: 'table stack-mobile' },
			h('thead', {}, h('tr', {}, ['Channel', 'Kind', 'Target', 'Health', 'Pending', admin ? 'Actions' : null]
				.filter(Boolean).map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, rows.map((c) => {
				const result = h('div', { class: 'small test-result', 'aria-live': 'polite' }, testResults.get(c.name) || null);
				return h('tr', { dataset: { channel: c.name, failing: c.failing ? 'true' : 'false' } },
					h('td', { 'data-label': 'Channel' }, h('strong', {}, c.name), c.enabled ? null : h('span', { class: 'muted small' }, ' (off)')),
					h('td', { 'data-label': 'Kind' }, c.kind, c.kind === 'email' ? h('span', { class: 'muted small' }, ` · ${c.recipients} recipients`) : null),
					h('td', { 'data-label': 'Target' }, h('code', {}, c.target)),
					h('td', { 'data-label': 'Health' }, health(c)),
					h('td', { 'data-label': 'Pending' }, String(c.pending)),
					admin ? h('td', { 'data-label': 'Actions' },
						action('Send test', `Send a test to ${c.name}`, 'btn-primary', async () => {
							result.replaceChildren('Sending…');
							const r = await rpc('test_channel', { id: c.id });
							testResults.set(c.name, r.ok ? h('span', { class: 'text-success' }, `Delivered (${r.status_code}) in ${Math.round(r.duration_ms)} ms`)
								: h('span', { class: 'text-danger' }, `Failed: ${r.error}`));
						}, 'send the test'),
						' ',
						action(c.enabled ? 'Turn off' : 'Turn on', `${c.enabled ? 'Turn off' : 'Turn on'} channel ${c.name}`, '',
							() => rpc('update_alert_channel', { id: c.id, enabled: !c.enabled }), 'change the channel'),
						' ',
						action('Delete', `Delete channel ${c.name}`, 'btn-danger', () => rpc('delete_alert_channel', { id: c.id }), 'delete the channel'),
						result) : null);
			})))));
	}

	// A channel's health in words: failing after 3 failures in a row, with the last error.
	function health(c) {
		if (!c.last_attempt_at) return h('span', { class: 'muted' }, 'not used yet');
		if (c.failing) {
			return h('div', {}, h('span', { class: 'badge badge-danger' }, `Failing (${c.consecutive_failures} in a row)`),
				h('div', { class: 'muted small' }, c.last_error, ' ', ago(c.last_failure_at)));
		}
		return h('div', {}, h('span', { class: 'badge badge-success' }, 'OK'),
			h('div', { class: 'muted small' }, 'last delivery ', ago(c.last_success_at, 'never'),
				c.failures_total ? ` · ${c.failures_total} of ${c.attempts_total} attempts failed` : ''));
	}

	// The form that adds a rule; its parameters follow the chosen watch.
	async function newRuleForm() {
		const models = await get('crm_models', { select: 'crm,model', order: 'crm.asc,model.asc' }, { signal: ctx.signal });
		const crms = [...new Set(models.map((m) => m.crm))];
		const name = h('input', { id: 'r-name', required: true, maxlength: 100, placeholder: 'HubSpot failures' });
		const watch = h('select', { id: 'r-watch' }, watches.map((w) => h('option', { value: w.watch }, w.label)));
		const crm = h('select', { id: 'r-crm' }, h('option', { value: '' }, 'every CRM'), crms.map((c) => h('option', { value: c }, c)));
		const model = h('select', { id: 'r-model' });
		const sev = h('select', { id: 'r-severity' }, ['warning', 'critical', 'info'].map((s) => h('option', { value: s }, s)));
		const chans = h('div', { class: 'checks', id: 'r-channels' });
		const help = h('p', { class: 'help', id: 'r-watch-help' });
		const paramSlot = h('div', { class: 'field-grid' });
		const general = h('div', { 'aria-live': 'polite' });
		const inputs = {};
		const paintModels = () => replace(model, h('option', { value: '' }, crm.value ? 'every model' : '—'),
			models.filter((m) => m.crm === crm.value).map((m) => h('option', { value: m.model }, m.model)));
		const paintParams = () => {
			const w = watches.find((x) => x.watch === watch.value) || { params: [] };
			help.textContent = w.help || '';
			for (const k of Object.keys(inputs)) delete inputs[k];
			replace(paramSlot, (w.params || []).map((p) => {
				const id = `r-p-${p.name}`;
				const input = p.type === 'boolean' ? h('input', { id, type: 'checkbox', checked: !!p.default })
					: p.type === 'choice' ? h('select', { id }, p.choices.map((c) => h('option', { value: c, selected: c === p.default }, c)))
						: h('input', { id, type: 'number', value: String(p.default), min: p.min, max: p.max, step: p.type === 'integer' ? 1 : 'any' });
				inputs[p.name] = { input, p };
				return h('div', { class: 'field' }, h('label', { for: id }, `${p.name}${p.unit ? ` (${p.unit})` : ''}`), input,
					h('p', { class: 'help' }, p.help), h('p', { class: 'field-error', id: `${id}-err` }));
			}));
		};
		const paintChannelChoices = () => replace(chans, channels.map((c) => h('label', { class: 'check' },
			h('input', { type: 'checkbox', value: c.name }), ` ${c.name}`)));
		crm.addEventListener('change', paintModels);
		watch.addEventListener('change', paintParams);
		paintModels();
		paintParams();
		paintChannelChoices();
		repaintChannelChoices = paintChannelChoices;
		const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, '+ Add rule');
		const form = h('form', { class: 'card', 'aria-labelledby': 'nr-title', novalidate: true },
			h('div', { class: 'card-head' }, h('h2', { id: 'nr-title' }, 'Add a rule')), general,
			h('div', { class: 'field-grid' },
				h('div', { class: 'field' }, h('label', { for: 'r-name' }, 'Name'), name),
				h('div', { class: 'field' }, h('label', { for: 'r-watch' }, 'Watch'), watch, help),
				h('div', { class: 'field' }, h('label', { for: 'r-crm' }, 'CRM'), crm),
				h('div', { class: 'field' }, h('label', { for: 'r-model' }, 'Model'), model),
				h('div', { class: 'field' }, h('label', { for: 'r-severity' }, 'Severity'), sev)),
			paramSlot,
			h('fieldset', { class: 'field' }, h('legend', {}, 'Send to'), chans),
			h('div', { class: 'form-actions' }, submit));
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			general.replaceChildren();
			for (const el of form.querySelectorAll('.field-error')) el.replaceChildren();
			const params = {};
			for (const [k, { input, p }] of Object.entries(inputs)) {
				params[k] = p.type === 'boolean' ? input.checked : p.type === 'choice' ? input.value : Number(input.value);
			}
			submit.disabled = true;
			try {
				await rpc('create_alert_rule', {
					name: name.value.trim(), watch: watch.value, crm: crm.value || null, model: model.value || null, params,
					channels: [...chans.querySelectorAll('input:checked')].map((i) => i.value), severity: sev.value });
				name.value = '';
				load();
			} catch (err) {
				// the server names the parameter at fault in details: params.count, name, ...
				const field = err.details && err.details.startsWith('params.') ? document.getElementById(`r-p-${err.details.slice(7)}-err`) : null;
				if (field) field.textContent = err.hint ? `${err.message}. ${err.hint}` : err.message;
				else replace(general, errorBox(err, 'Could not add the rule'));
			} finally {
				submit.disabled = false;
			}
		});
		return form;
	}

	// The form that adds a channel; e-mail asks for sender and recipients.
	function newChannelForm() {
		const name = h('input', { id: 'c-name', required: true, placeholder: 'ops-slack', pattern: '[a-z0-9][a-z0-9_.-]*' });
		const kind = h('select', { id: 'c-kind' }, KINDS.map(([v, t]) => h('option', { value: v }, t)));
		const url = h('input', { id: 'c-url', required: true, autocomplete: 'off', placeholder: URL_HINTS.webhook });
		const from = h('input', { id: 'c-from', placeholder: 'alerts@example.com' });
		const to = h('input', { id: 'c-to', placeholder: 'oncall@example.com, ops@example.com' });
		const user = h('input', { id: 'c-user', autocomplete: 'off' });
		const pass = h('input', { id: 'c-pass', type: 'password', autocomplete: 'new-password' });
		const mail = h('div', { class: 'field-grid' },
			h('div', { class: 'field' }, h('label', { for: 'c-from' }, 'From'), from),
			h('div', { class: 'field' }, h('label', { for: 'c-to' }, 'To (comma-separated)'), to),
			h('div', { class: 'field' }, h('label', { for: 'c-user' }, 'SMTP user (optional)'), user),
			h('div', { class: 'field' }, h('label', { for: 'c-pass' }, 'SMTP password'), pass));
		const general = h('div', { 'aria-live': 'polite' });
		const note = h('p', { class: 'help' });
		const paintKind = () => {
			mail.hidden = kind.value !== 'email';
			url.placeholder = URL_HINTS[kind.value];
			note.textContent = kind.value === 'webhook' ? 'Signed with a random secret (X-Crm-Dashboard-Signature); administrators read it in crm_api.alert_channel_settings.'
				: kind.value === 'slack' ? 'The incoming webhook\'s URL is its secret: only administrators can read it back.'
					: 'STARTTLS is used when the server offers it (always with a password); smtps:// is TLS from the start.';
		};
		kind.addEventListener('change', paintKind);
		paintKind();
		const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, '+ Add channel');
		const form = h('form', { class: 'card', 'aria-labelledby': 'nc-title', novalidate: true },
			h('div', { class: 'card-head' }, h('h2', { id: 'nc-title' }, 'Add a channel')), general,
			h('div', { class: 'field-grid' },
				h('div', { class: 'field' }, h('label', { for: 'c-name' }, 'Name'), name),
				h('div', { class: 'field' }, h('label', { for: 'c-kind' }, 'Kind'), kind),
				h('div', { class: 'field' }, h('label', { for: 'c-url' }, 'URL'), url, note)),
			mail, h('div', { class: 'form-actions' }, submit));
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			general.replaceChildren();
			submit.disabled = true;
			const args = { name: name.value.trim(), kind: kind.value, url: url.value.trim() };
			if (kind.value === 'email') {
				Object.assign(args, { mail_from: from.value.trim(), mail_to: to.value.split(',').map((s) => s.trim()).filter(Boolean) });
				if (user.value) Object.assign(args, { smtp_username: user.value, smtp_password: pass.value });
			}
			try {
				await rpc('create_alert_channel', args);
				name.value = '';
				url.value = '';
				pass.value = '';
				load();
			} catch (err) {
				replace(general, errorBox(err, 'Could not add the channel'));
			} finally {
				submit.disabled = false;
			}
		});
		return form;
	}

	load();
	return h('div', { class: 'page' },
		h('div', { class: 'page-head' }, h('div', {}, pageTitle('Rules and channels'),
			h('p', { class: 'muted subtitle' }, h('a', { href: '/alerts' }, '← Alerts'), ' · what is watched, and where alerts are sent.'))),
		errorSlot,
		h('section', { 'aria-labelledby': 'rules-title' }, h('h2', { id: 'rules-title' }, 'Rules'), rulesSlot, ruleForm),
		h('section', { 'aria-labelledby': 'channels-title' }, h('h2', { id: 'channels-title' }, 'Channels'), channelsSlot, channelForm));
}
