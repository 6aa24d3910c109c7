// Retention in the web UI: the history page says what is kept and since
// when; an administrator sets the policy there (a mistake is placed under
// its field) and sees the launcher remove old runs; a viewer reads it and
// finds no form.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, ADMIN, VIEWER, launch, newPage, login, shoot, until, sql } from './lib.mjs';

let browser;

before(async () => {
	browser = await launch();
	// runs far older than anything of the demo's, so that a policy can remove them alone
	sql(`INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time)
		SELECT 'hubspot', 'deal', 'success', now() - interval '50 years' - g * interval '1 hour',
		       now() - interval '50 years' - g * interval '1 hour' + interval '1 minute'
		  FROM generate_series(1, 5) g`);
});

after(async () => {
	sql('SELECT crm_api.set_retention()');
	sql('DELETE FROM crm_dashboard.retention_state');
	sql("DELETE FROM crm_dashboard.sync_history WHERE start_time < now() - interval '40 years'");
	await browser?.close();
});

// The card's facts as { term: description }.
async function facts(page) {
	const card = page.locator('section.retention-card');
	const terms = await card.locator('dt').allInnerTexts();
	const values = await card.locator('dd').allInnerTexts();
	return Object.fromEntries(terms.map((t, i) => [t.toLowerCase(), values[i]]));
}

test('an administrator sets the retention policy on the history page', async () => {
	const page = await newPage(browser);
	await login(page, ADMIN);
	await page.goto(`${BASE}/history`);
	const card = page.locator('section.retention-card');
	await card.getByRole('heading', { name: 'Retention' }).waitFor();
	await until(async () => (await facts(page)).runs === 'kept for ever');
	assert.equal((await facts(page))['history kept since'], 'the first run (nothing removed)');

	// logs kept longer than runs: the server says so, under the logs field
	await page.getByLabel('Keep runs for').fill('40 years');
	await page.getByLabel('Keep logs for').fill('45 years');
	await page.getByRole('button', { name: 'Save policy' }).click();
	await card.locator('#ret-keep_logs-err').getByText(/keep_logs .*at most keep_runs/).waitFor();
	assert.equal(await card.locator('#ret-keep_runs-err').innerText(), '');

	await page.getByLabel('Keep logs for').fill('30 years');
	await page.getByRole('button', { name: 'Save policy' }).click();
	await card.getByText('Saved.', { exact: false }).waitFor();
	const saved = await facts(page);
	assert.equal(saved.runs.split('\n')[0], 'kept 40 years');
	assert.equal(saved.logs, 'kept 30 years');
	assert.equal(saved['applied by'], 'the sync launcher, every 10 s');
	assert.equal(await page.getByLabel('Keep runs for').inputValue(), '40 years');

	// the launcher removes the old runs; the page says since when history is kept
	await until(async () => {
		await page.reload();
		await card.locator('dt').first().waitFor();
		return /^5 runs/.test((await facts(page))['removed so far'] || '');
	}, 40000, 1000);
	assert.notEqual((await facts(page))['history kept since'], 'the first run (nothing removed)');
	assert.equal(sql("SELECT count(*) FROM crm_dashboard.sync_history WHERE start_time < now() - interval '40 years'")[0][0], '0');
	await shoot(page, 'retention');
	assert.deepEqual(page.problems, []);
	await page.context().close();
});

test('a viewer reads the retention policy and finds no form', async () => {
	const page = await newPage(browser);
	await login(page, VIEWER);
	await page.goto(`${BASE}/history`);
	const card = page.locator('section.retention-card');
	await card.locator('dt').first().waitFor();
	assert.ok((await facts(page)).runs);
	assert.equal(await card.locator('form').count(), 0);
	assert.equal(await page.getByRole('button', { name: 'Save policy' }).count(), 0);
	assert.deepEqual(page.problems, []);
	await page.context().close();
});
