// Runs that take care of themselves, as a person sees them: attempt n of m,
// why a queued run waits, a rate-limit wait, pausing and resuming with a
// reason, "action required", and freshness beside the data watermark.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, ADMIN, VIEWER, launch, newPage, login, sql, shoot, until } from './lib.mjs';

let browser;
let page;

// Ids of the rows this file inserts, removed again at the end.
const inserted = [];

before(async () => {
	browser = await launch();
	page = await newPage(browser);
	await login(page, ADMIN);
});

after(async () => {
	if (inserted.length) sql(`DELETE FROM crm_dashboard.sync_history WHERE id IN (${inserted.join(',')})`);
	sql("UPDATE crm_dashboard.run_pause SET resumed_at = now(), resumed_by = 'test' WHERE resumed_at IS NULL AND crm = 'genius'");
	sql("DELETE FROM crm_dashboard.freshness_sla WHERE crm = 'genius'");
	assert.deepEqual(page?.problems ?? [], []);
	await browser?.close();
});

// Insert one history row; returns its id.
function insertRun(values) {
	const cols = Object.keys(values).join(', ');
	const [[id]] = sql(`INSERT INTO crm_dashboard.sync_history (${cols}) VALUES (${Object.values(values).join(', ')}) RETURNING id`);
	inserted.push(Number(id));
	return Number(id);
}

test('a retry says attempt n of m and why it waits, in the history and on the run', async () => {
	const first = insertRun({ crm_source: "'genius'", sync_type: "'quote'", status: "'failed'", start_time: "now() - interval '2 minutes'",
		end_time: "now() - interval '1 minute'", error_message: "'exited with code 75'", error_class: "'temporary'",
		attempt: 1, max_attempts: 3, configuration: `'{"argv": ["/bin/true"]}'` });
	const retry = insertRun({ crm_source: "'genius'", sync_type: "'quote'", status: "'queued'", attempt: 2, max_attempts: 3,
		first_attempt_id: first, priority: 2, not_before: "now() + interval '2 hours'", configuration: `'{"argv": ["/bin/true"]}'` });
	await page.goto(`${BASE}/history?crm=genius&model=quote`);
	const row = page.locator(`tr[data-run="${retry}"]`);
	await row.waitFor();
	const status = await row.locator('td[data-label="Status"]').innerText();
	assert.match(status, /Queued/);
	assert.match(status, /attempt 2 of 3/);
	assert.match(status, /retry at \d\d:\d\d:\d\d \(attempt 2 of 3\)/);
	assert.match(await row.locator('td[data-label="Run"]').innerText(), new RegExp(`retry of #${first}`));

	await page.goto(`${BASE}/history/${retry}`);
	const wait = page.locator('.alert.wait-reason');
	await wait.waitFor();
	assert.match(await wait.innerText(), /^Waiting: retry at \d\d:\d\d:\d\d \(attempt 2 of 3\)$/);
	assert.equal(await page.locator('[data-attempt]').innerText(), 'attempt 2 of 3');
	const attempts = page.locator('ol.attempts li');
	assert.equal(await attempts.count(), 2);
	assert.match(await attempts.nth(0).innerText(), new RegExp(`#${first}.*attempt 1 of 3.*temporary`));
	await page.getByRole('link', { name: `run #${first}` }).waitFor();
	await shoot(page, 'run-retry');
});

test('a running run waiting for the rate limit says until when', async () => {
	const running = insertRun({ crm_source: "'genius'", sync_type: "'job'", status: "'running'", start_time: 'now()',
		rate_limited_until: "now() + interval '10 minutes'", records_processed: 40, records_total: 100, configuration: "'{}'" });
	await page.goto(`${BASE}/history/${running}`);
	const wait = page.locator('.alert.wait-reason');
	await wait.waitFor();
	assert.match(await wait.innerText(), /^Waiting for the CRM's rate limit until \d\d:\d\d$/);
	// the ETA counts the wait: at least the nine minutes left of it
	const eta = await page.locator('.stat', { hasText: 'ETA' }).locator('dd').innerText();
	assert.match(eta, /^(9|10) min/);
	sql(`UPDATE crm_dashboard.sync_history SET status = 'cancelled', end_time = now() WHERE id = ${running}`);
});

test('operators pause a model with a reason and resume it; Sync says why it will not start', async () => {
	await page.goto(`${BASE}/crm/genius`);
	const row = page.locator('tr[data-model="division"]');
	await row.waitFor();
	await row.getByRole('button', { name: 'Pause division' }).click();
	const dialog = page.getByRole('dialog', { name: 'Pause genius · division' });
	await dialog.waitFor();
	// a reason is required, said beside the field
	await dialog.getByRole('button', { name: '⏸ Pause' }).click();
	assert.match(await dialog.locator('#pause-error').innerText(), /Say why/);
	await dialog.getByLabel('Reason').fill('API migration <script>alert(1)</script>');
	await dialog.getByRole('button', { name: '⏸ Pause' }).click();
	await until(async () => /Paused by admin: API migration <script>alert\(1\)<\/script>/.test(
		await page.locator('tr[data-model="division"] .pause-note').innerText().catch(() => '')));
	assert.equal(await page.locator('tr[data-model="division"]').getByRole('button', { name: 'Resume division' }).count(), 1);
	const [[by, reason]] = sql("SELECT paused_by, reason FROM crm_api.pauses WHERE crm = 'genius' AND model = 'division' AND active");
	assert.equal(by, 'admin');
	assert.equal(reason, 'API migration <script>alert(1)</script>');

	// Sync refuses with the pause's words; "Start even if paused" is offered
	await page.locator('tr[data-model="division"]').getByRole('button', { name: 'Sync division' }).click();
	const modal = page.getByRole('dialog');
	await modal.getByLabel(/Start even if paused/).waitFor();
	await modal.getByRole('button', { name: '▶ Start sync' }).click();
	await until(async () => /genius division is paused/.test(await modal.innerText()));
	assert.match(await modal.innerText(), /ignore_pause/);
	await modal.getByRole('button', { name: 'Cancel' }).click();

	// the model page shows the pause as a banner
	await page.goto(`${BASE}/crm/genius/division`);
	const banner = page.locator('.pause-banner');
	await banner.waitFor();
	assert.match(await banner.innerText(), /Paused by admin: API migration/);
	await shoot(page, 'model-paused');
	await banner.getByRole('button', { name: 'Resume division' }).click();
	await until(async () => (await page.locator('.pause-banner').count()) === 0);
	assert.deepEqual(sql("SELECT count(*) FROM crm_api.pauses WHERE crm = 'genius' AND active"), [['0']]);
});

test('a whole CRM is paused and resumed from its page, and the overview says so', async () => {
	await page.goto(`${BASE}/crm/genius`);
	await page.getByRole('button', { name: 'Pause genius' }).click();
	const dialog = page.getByRole('dialog', { name: 'Pause all of genius' });
	await dialog.getByLabel('Reason').fill('contract renewal');
	await dialog.getByRole('button', { name: '⏸ Pause' }).click();
	const banner = page.locator('.pause-banner');
	await banner.waitFor();
	assert.match(await banner.innerText(), /CRM Paused by admin: contract renewal/);
	// every model says it is held by the CRM's pause, and offers no Resume of its own
	assert.match(await page.locator('tr[data-model="lead"] .pause-note').innerText(), /CRM Paused by admin: contract renewal/);
	assert.equal(await page.locator('tr[data-model="lead"]').getByRole('button', { name: 'Resume lead' }).count(), 0);
	await page.goto(`${BASE}/`);
	const card = page.locator('.crm-card[data-crm="genius"]');
	await card.waitFor();
	await until(async () => /Paused by admin: contract renewal/.test(await card.innerText()));
	await page.goto(`${BASE}/crm/genius`);
	await page.locator('.pause-banner').getByRole('button', { name: 'Resume genius' }).click();
	await until(async () => (await page.locator('.pause-banner').count()) === 0);
});

test('a model that needs action says so with the error, on every page', async () => {
	insertRun({ crm_source: "'genius'", sync_type: "'userdata'", status: "'failed'", start_time: "now() - interval '1 minute'",
		end_time: 'now()', error_message: "'exited with code 77: HTTP 401 the API key was revoked'", error_class: "'permanent'",
		configuration: `'{"argv": ["/bin/true"]}'` });
	await page.goto(`${BASE}/crm/genius/userdata`);
	const alert = page.locator('.alert.action-required');
	await alert.waitFor();
	assert.match(await alert.innerText(), /Action required/);
	assert.match(await alert.innerText(), /HTTP 401 the API key was revoked/);
	await page.goto(`${BASE}/crm/genius`);
	const row = page.locator('tr[data-model="userdata"]');
	await row.waitFor();
	assert.equal(await row.locator('[data-status="action-required"]').count(), 1);
	await page.goto(`${BASE}/`);
	await until(async () => /1 model needs action/.test(await page.locator('.crm-card[data-crm="genius"]').innerText()));
});

test('freshness: on time, late or overdue, expected by, last success, and the data watermark or "not indexed"', async () => {
	// the demo's history ends two hours ago: with a promise of every 30 minutes, lead is overdue
	sql("SELECT crm_api.set_freshness_sla('genius', 'lead', '30 minutes')");
	const [[lastSuccess, expectedBy]] = sql("SELECT last_success_at, expected_by FROM crm_api.crm_models WHERE crm = 'genius' AND model = 'lead'");
	await page.goto(`${BASE}/crm/genius/lead`);
	const facts = page.locator('dl.freshness');
	await facts.waitFor();
	const text = await facts.innerText();
	assert.match(text, /Overdue/);
	assert.match(text, /every 30 minutes \(SLA\)/);
	const times = await facts.locator('time').evaluateAll((els) => els.map((e) => e.dateTime));
	assert.equal(new Date(times[0]).getTime(), new Date(expectedBy.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).getTime());
	assert.equal(new Date(times[1]).getTime(), new Date(lastSuccess.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).getTime());
	// genius_lead has an index on updated_at: its newest value, in words
	const [[newest]] = sql("SELECT max(updated_at) IS NOT NULL FROM ingestion.genius_lead");
	assert.equal(newest, 't');
	assert.doesNotMatch(text, /not indexed/);
	assert.equal(times.length, 3, 'expected by, last success and the data watermark are times');
	await shoot(page, 'model-freshness');

	// the CRM page: the model's badge, the CRM's worst, and "not indexed" where there is no index
	await page.goto(`${BASE}/crm/genius`);
	const lead = page.locator('tr[data-model="lead"] td[data-label="Freshness"]');
	await lead.waitFor();
	assert.match(await lead.innerText(), /Overdue/);
	assert.match(await page.locator('tr[data-model="division"] td[data-label="Freshness"]').innerText(), /not indexed/);
	assert.equal(await page.locator('.title-line [data-freshness="overdue"]').count(), 1);
});

test('viewers see waits and freshness but no Pause or Resume', async () => {
	sql("SELECT crm_api.pause_sync('genius', 'quote', 'viewer check')");
	const viewer = await newPage(browser);
	await login(viewer, VIEWER);
	await viewer.goto(`${BASE}/crm/genius`);
	const row = viewer.locator('tr[data-model="quote"]');
	await row.waitFor();
	await until(async () => /viewer check/.test(await row.innerText()));
	assert.equal(await viewer.getByRole('button', { name: /^(Pause|Resume)/ }).count(), 0);
	assert.deepEqual(viewer.problems, []);
	await viewer.context().close();
	sql("SELECT crm_api.resume_sync('genius', 'quote')");
});

test('the words of attempts, waits and cadences', async () => {
	const got = await page.evaluate(async () => {
		const a = await import('/ui/js/components/attempts.js');
		const f = await import('/ui/js/components/freshness.js');
		const soon = new Date(Date.now() + 600000).toISOString();
		return {
			first: a.attemptText({ attempt: 1, max_attempts: 1 }),
			second: a.attemptText({ attempt: 2, max_attempts: 3 }),
			queued: a.waitText({ status: 'queued', wait_reason: 'global limit 4/4' }),
			waiting: a.waitText({ status: 'running', rate_limited_until: soon }),
			over: a.waitText({ status: 'running', rate_limited_until: new Date(Date.now() - 1000).toISOString() }),
			cadences: [21600, 600, 45000, 86400, 30].map(f.every),
			sla: f.cadenceText(21600, 'sla'),
		};
	});
	assert.equal(got.first, null);
	assert.equal(got.second, 'attempt 2 of 3');
	assert.equal(got.queued, 'global limit 4/4');
	assert.match(got.waiting, /^waiting for the CRM's rate limit until \d\d:\d\d$/);
	assert.equal(got.over, null);
	assert.deepEqual(got.cadences, ['6 hours', '10 minutes', '12.5 hours', '1 day', '30 seconds']);
	assert.equal(got.sla, 'every 6 hours (SLA)');
});
