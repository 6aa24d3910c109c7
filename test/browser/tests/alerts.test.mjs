// Alerts in the web UI: an administrator adds a channel (a bad URL is
// explained), sends it a test that a local receiver checks, adds a rule;
// a failure recorded in SQL rings the bell on every page without a reload
// and badges the CRM card and the model row; an operator's actions
// (acknowledge, snooze with a reason) show; a viewer finds no controls.
// Screenshots of the alerts pages at three widths.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { BASE, ADMIN, VIEWER, launch, newPage, login, sql, shoot, until } from './lib.mjs';

const RECEIVER_PORT = 24512 + Number(process.env.CRM_TEST_PORT_OFFSET || 0);
let browser;
let receiver;
const received = [];

before(async () => {
	browser = await launch();
	receiver = await new Promise((resolve) => {
		const server = createServer((req, res) => {
			let body = '';
			req.on('data', (c) => { body += c; });
			req.on('end', () => {
				received.push({ headers: req.headers, body });
				res.writeHead(200, { 'Content-Length': '2' });
				res.end('ok');
			});
		});
		server.listen(RECEIVER_PORT, '127.0.0.1', () => resolve(server));
	});
	sql("ALTER SYSTEM SET crm_dashboard.delivery_allowed_hosts = 'public, 127.0.0.1'");
	sql('SELECT pg_reload_conf()');
	await until(() => sql("SHOW crm_dashboard.delivery_allowed_hosts")[0][0].includes('127.0.0.1'));
});

after(async () => {
	sql("SELECT crm_api.delete_alert_rule(id) FROM crm_api.alert_rules WHERE name = 'UI failures'");
	sql("SELECT crm_api.delete_alert_channel(id) FROM crm_api.alert_channels WHERE name LIKE 'ui-%'");
	sql('ALTER SYSTEM RESET crm_dashboard.delivery_allowed_hosts');
	sql('SELECT pg_reload_conf()');
	await browser?.close();
	receiver?.close();
});

// The number the bell shows.
async function bellCount(page) {
	return Number(await page.locator('#bell').getAttribute('data-open'));
}

test('an administrator adds a channel, tests it and adds a rule', async () => {
	const page = await newPage(browser);
	await login(page, ADMIN);
	await page.goto(`${BASE}/alerts/settings`);
	await page.getByRole('heading', { level: 1, name: 'Rules and channels' }).waitFor();
	// a URL that is not http(s) is refused in words
	await page.getByLabel('Name', { exact: true }).nth(1).fill('ui-bad');
	await page.getByLabel('URL').fill('file:///etc/passwd');
	await page.getByRole('button', { name: '+ Add channel' }).click();
	await page.getByText('URL scheme "file" is not allowed for a webhook channel').waitFor();
	// a good one, tested
	await page.getByLabel('Name', { exact: true }).nth(1).fill('ui-hook');
	await page.getByLabel('URL').fill(`http://127.0.0.1:${RECEIVER_PORT}/hook`);
	await page.getByRole('button', { name: '+ Add channel' }).click();
	const row = page.locator('tr[data-channel="ui-hook"]');
	await row.waitFor();
	await row.getByRole('button', { name: 'Send a test to ui-hook' }).click();
	await row.getByText(/Delivered \(200\)/).waitFor();
	const test = received.at(-1);
	assert.equal(JSON.parse(test.body).type, 'alert.test');
	const [[secret]] = sql("SELECT secret FROM crm_api.alert_channel_settings WHERE name = 'ui-hook'");
	const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(test.headers['x-crm-dashboard-signature']);
	assert.equal(createHmac('sha256', secret).update(`${t}.${test.body}`).digest('hex'), v1);
	// a rule for HubSpot contacts that sends to it
	await page.getByLabel('Name', { exact: true }).first().fill('UI failures');
	await page.getByLabel('Watch').selectOption('run_failed');
	await page.getByLabel('CRM', { exact: true }).selectOption('hubspot');
	await page.getByLabel('Model', { exact: true }).selectOption('contact');
	await page.getByLabel('Severity').selectOption('critical');
	await page.locator('#r-channels').getByLabel('ui-hook').check();
	await page.getByRole('button', { name: '+ Add rule' }).click();
	await page.getByText('UI failures').waitFor();
	const [[channels]] = sql("SELECT array_to_string(channels, ',') FROM crm_api.alert_rules WHERE name = 'UI failures'");
	assert.equal(channels, 'ui-hook');
	// an e-mail channel: its recipients arrive as a list, each one whole
	await page.getByLabel('Name', { exact: true }).nth(1).fill('ui-mail');
	await page.getByLabel('Kind').selectOption('email');
	await page.getByLabel('URL').fill('smtp://127.0.0.1:2525');
	await page.getByLabel('From').fill('alerts@example.com');
	await page.getByLabel('To (comma-separated)').fill('oncall@example.com,  ops{team}@example.com ');
	await page.getByRole('button', { name: '+ Add channel' }).click();
	await page.locator('tr[data-channel="ui-mail"]').getByText('2 recipients').waitFor();
	const [[to]] = sql("SELECT array_to_json(mail_to) FROM crm_api.alert_channel_settings WHERE name = 'ui-mail'");
	assert.deepEqual(JSON.parse(to), ['oncall@example.com', 'ops{team}@example.com']);
	await shoot(page, 'alert-settings');
	assert.deepEqual(page.problems, []);
	await page.context().close();
});

test('a failure rings the bell live and badges the CRM and the model', async () => {
	const page = await newPage(browser);
	await login(page, ADMIN);
	await until(async () => (await page.locator('#live-state').getAttribute('data-state')) === 'live');
	await until(async () => !Number.isNaN(await bellCount(page)));
	const before = await bellCount(page);
	await page.evaluate(() => { window.notReloaded = true; });
	sql("INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, error_message) " +
		"VALUES ('hubspot', 'contact', 'failed', now() - interval '1 minute', now(), 'HTTP 401 from HubSpot: token expired')");
	await until(async () => (await bellCount(page)) === before + 1);
	await page.locator('article[data-crm="hubspot"] .alert-badge').waitFor();
	assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
	// the webhook got it, signed
	await until(() => received.some((r) => JSON.parse(r.body).type === 'alert.firing'));
	await page.goto(`${BASE}/crm/hubspot`);
	await page.locator('tr[data-model="contact"] .alert-badge').waitFor();
	await page.locator('#bell').click();
	await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
	const alertRow = page.locator('tr[data-status="open"]', { hasText: 'HubSpot contact: sync failed' });
	await alertRow.waitFor();
	await alertRow.getByText('HTTP 401 from HubSpot: token expired').waitFor();
	await shoot(page, 'alerts');
	// acknowledge, then snooze with a reason (a missing reason is explained)
	await alertRow.getByRole('button', { name: /^Acknowledge alert/ }).click();
	const acked = page.locator('tr[data-status="acknowledged"]', { hasText: 'HubSpot contact: sync failed' });
	await acked.waitFor();
	await acked.getByText(`by ${ADMIN.user}`).waitFor();
	await until(async () => (await bellCount(page)) === before);
	await acked.getByRole('button', { name: /^Snooze alert/ }).click();
	await acked.getByRole('button', { name: 'Snooze', exact: true }).click();
	await acked.getByText('Say why the alert is snoozed.').waitFor();
	await acked.getByLabel('Reason').fill('HubSpot maintenance');
	await acked.getByRole('button', { name: 'Snooze', exact: true }).click();
	const snoozed = page.locator('tr[data-status="snoozed"]', { hasText: 'HubSpot contact: sync failed' });
	await snoozed.getByText(/HubSpot maintenance/).waitFor();
	// the filters: resolved shows none of it
	await page.getByLabel('Status').selectOption('resolved');
	await until(async () => (await page.locator('tr[data-status="snoozed"]').count()) === 0);
	assert.match(page.url(), /status=resolved/);
	assert.deepEqual(page.problems, []);
	await page.context().close();
});

test('a viewer reads alerts and rules but finds no controls', async () => {
	const page = await newPage(browser);
	await login(page, VIEWER);
	await page.goto(`${BASE}/alerts?status=all`);
	await page.locator('tr[data-alert]').first().waitFor();
	assert.equal(await page.getByRole('button', { name: /Acknowledge|Snooze|Resolve/ }).count(), 0);
	await page.goto(`${BASE}/alerts/settings`);
	await page.locator('tr[data-channel="ui-hook"]').waitFor();
	assert.equal(await page.getByRole('button', { name: /Send a test|Delete|Turn/ }).count(), 0);
	assert.equal(await page.getByRole('button', { name: /Add/ }).count(), 0);
	// the channel's path (its secret, for Slack) is never shown
	assert.equal(await page.getByText('/hook').count(), 0);
	assert.deepEqual(page.problems, []);
	await page.context().close();
});
