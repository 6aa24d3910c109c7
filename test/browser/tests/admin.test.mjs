// An operator's path through the dashboard, as a new user would take it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BASE, ADMIN, launch, newPage, login, sql, until, parseCsv } from './lib.mjs';

let browser;
let page;
let fullRunId = null;

before(async () => {
	browser = await launch();
	page = await newPage(browser);
});
after(async () => { await browser?.close(); });

const textColumns = () => sql(`SELECT column_name FROM information_schema.columns
	WHERE table_schema = 'ingestion' AND table_name = 'hubspot_contact' AND data_type IN ('text', 'character varying')`).map((r) => r[0]);
const searchWhere = (term) => textColumns().map((c) => `"${c}" ILIKE '%${term}%'`).join(' OR ');

test('a visitor is sent to the sign-in page and a wrong password is refused in words', async () => {
	await page.goto(`${BASE}/crm/hubspot`);
	await page.waitForURL(/\/login\?next=/);
	await page.getByLabel('Username').fill(ADMIN.user);
	await page.getByLabel('Password').fill('not the password');
	await page.getByRole('button', { name: 'Sign in' }).click();
	const alert = page.getByRole('alert');
	await alert.waitFor();
	assert.match(await alert.innerText(), /\w+/);
	assert.match(page.url(), /\/login/);
});

test('signing in shows ten CRM cards with a status label each', async () => {
	await login(page, ADMIN);
	const cards = page.locator('.crm-card');
	await until(async () => (await cards.count()) === 10);
	const names = await page.locator('.crm-card h2').allInnerTexts();
	for (const n of ['HubSpot', 'Genius', 'CallRail', 'Five9', 'Google Sheets']) assert.ok(names.includes(n), `${n} in ${names}`);
	const labels = await page.locator('.crm-card .crm-meta .badge').allInnerTexts();
	assert.equal(labels.length, 10);
	for (const l of labels) assert.match(l, /Success|Warning|Failed|Running|Never synced|Queued/);
	const title = await page.locator('.crm-card[data-crm="hubspot"] time[title]').last().getAttribute('title');
	assert.ok(title && title !== 'Never synced', 'last sync has its exact time on hover');
});

test('the overview search narrows the cards', async () => {
	await page.getByLabel('Search CRMs').fill('hub');
	await until(async () => (await page.locator('.crm-card').count()) === 1);
	await page.getByLabel('Search CRMs').fill('');
	await until(async () => (await page.locator('.crm-card').count()) === 10);
});

test('HubSpot lists its models with actions', async () => {
	await page.getByRole('link', { name: 'HubSpot', exact: true }).click();
	await page.getByRole('heading', { level: 1, name: 'HubSpot' }).waitFor();
	await page.locator('tr[data-model]').first().waitFor();
	const models = await page.locator('tr[data-model]').evaluateAll((rows) => rows.map((r) => r.dataset.model));
	assert.deepEqual(models.sort(), ['appointment', 'contact', 'deal', 'division']);
	await page.getByRole('button', { name: 'Sync contact' }).waitFor();
	await page.getByRole('button', { name: 'Sync all models' }).waitFor();
});

test('a full sync with batch size 500: live command, validation beside the field, live progress, success', async () => {
	await page.getByRole('button', { name: 'Sync contact' }).click();
	const dialog = page.getByRole('dialog');
	await dialog.waitFor();
	const preview = dialog.locator('#command-preview');
	await until(async () => /--model contact|contact/.test(await preview.innerText()));

	await dialog.getByLabel('Batch size').fill('0');
	const err = dialog.locator('#err-batch_size');
	await until(async () => (await err.innerText()).length > 0);
	assert.match(await err.innerText(), /batch/i);
	assert.equal(await dialog.getByLabel('Batch size').getAttribute('aria-invalid'), 'true');

	await dialog.getByLabel(/Full sync/).check();
	await dialog.getByLabel('Batch size').fill('500');
	await until(async () => /--full/.test(await preview.innerText()) && /--batch-size 500/.test(await preview.innerText()));
	assert.equal(await err.innerText(), '');

	await page.evaluate(() => { window.notReloaded = true; });
	await dialog.getByRole('button', { name: /Start sync/ }).click();
	await dialog.locator('.progress-head').waitFor();
	fullRunId = /#(\d+)/.exec(await dialog.locator('.progress-head').innerText())[1];
	const progress = dialog.locator('[data-stat="progress"]');
	const seen = [];
	await until(async () => {
		const m = /^([\d,.\s]+)/.exec(await progress.innerText());
		const n = m ? Number(m[1].replace(/\D/g, '')) : 0;
		if (n > 0 && n !== seen[seen.length - 1]) seen.push(n);
		return (await dialog.locator('.run-status [data-status="success"]').count()) > 0;
	}, 90000, 150);
	assert.ok(seen.length >= 3, `the processed count climbed live: ${seen}`);
	for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `increasing: ${seen}`);
	assert.equal(await page.evaluate(() => window.notReloaded), true, 'no reload happened');
	assert.match(await dialog.locator('[data-stat="created"]').innerText(), /\d/);
	assert.match(await dialog.locator('.log').innerText(), /\S/);
	await page.keyboard.press('Escape');
	await dialog.waitFor({ state: 'detached' });
	const row = page.locator('tr[data-model="contact"]');
	await until(async () => (await row.locator('[data-status="success"]').count()) === 1);
});

test('the model page: search, sort by header, page size, next and previous', async () => {
	await page.locator('tr[data-model="contact"]').getByRole('link', { name: 'contact', exact: true }).click();
	await page.getByRole('heading', { level: 1, name: 'contact' }).waitFor();
	const rows = page.locator('.data-table tbody tr');
	await until(async () => (await rows.count()) === 25);

	await page.getByLabel('Rows per page').selectOption('10');
	await until(async () => (await rows.count()) === 10);
	const info = page.locator('.data-card .page-info');
	await until(async () => /^Page 1 of ≈ [\d,]+/.test(await info.innerText()));
	const firstId = async () => page.locator('.data-table tbody tr:first-child td[data-col="id"]').innerText();
	const page1 = await firstId();
	await page.getByRole('button', { name: 'Next →' }).click();
	await until(async () => /^Page 2/.test(await info.innerText()) && (await firstId()) !== page1);
	await page.getByRole('button', { name: '← Previous' }).click();
	await until(async () => /^Page 1/.test(await info.innerText()) && (await firstId()) === page1);

	const header = page.locator('th', { has: page.getByRole('button', { name: /^createdate/ }) });
	await header.getByRole('button').click();
	await until(async () => (await header.getAttribute('aria-sort')) === 'ascending');
	const cell = () => page.locator('.data-table tbody tr:first-child td[data-col="createdate"]').innerText();
	const [[minEpoch, maxEpoch]] = sql('SELECT extract(epoch FROM min(createdate)), extract(epoch FROM max(createdate)) FROM ingestion.hubspot_contact');
	await until(async () => Math.abs(new Date(await cell()).getTime() / 1000 - Number(minEpoch)) < 1);
	await header.getByRole('button').click();
	await until(async () => (await header.getAttribute('aria-sort')) === 'descending');
	await until(async () => Math.abs(new Date(await cell()).getTime() / 1000 - Number(maxEpoch)) < 1);

	await page.getByLabel('Search rows').fill('smith');
	const [[expected]] = sql(`SELECT count(*) FROM ingestion.hubspot_contact WHERE ${searchWhere('smith')}`);
	assert.ok(Number(expected) > 0, 'the demo has contacts matching smith');
	await until(async () => {
		const texts = await rows.allInnerTexts();
		return texts.length === Math.min(10, Number(expected)) && texts.every((t) => /smith/i.test(t));
	});
	assert.equal(new URL(page.url()).searchParams.get('q'), 'smith', 'the search is kept in the address');
});

test('CSV export of the whole filtered result matches SQL', async () => {
	const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /Export CSV/ }).click()]);
	assert.match(download.suggestedFilename(), /^hubspot_contact_smith_\d{4}-\d\d-\d\d\.csv$/);
	await page.getByText(`Downloaded ${download.suggestedFilename()}`).waitFor();
	const csv = parseCsv(readFileSync(await download.path(), 'utf8'));
	const header = csv[0];
	const idAt = header.indexOf('id');
	const emailAt = header.indexOf('email');
	assert.ok(idAt >= 0 && emailAt >= 0, `header: ${header}`);
	const got = csv.slice(1).map((r) => [r[idAt], r[emailAt]]);
	const want = sql(`SELECT id, coalesce(email, '') FROM ingestion.hubspot_contact WHERE ${searchWhere('smith')} ORDER BY createdate DESC, id DESC`);
	assert.equal(got.length, want.length, 'every matching row, not only the page');
	assert.deepEqual(new Map(got), new Map(want.map((r) => [r[0], r[1]])));
	assert.deepEqual(got.map((r) => r[0]), want.map((r) => r[0]), 'in the page order (createdate descending)');
});

test('the model summary counts exactly on demand, shows full logs, and columns can be hidden', async () => {
	await page.getByRole('button', { name: 'Exact count' }).click();
	const [[count]] = sql('SELECT count(*) FROM ingestion.hubspot_contact');
	const exact = page.locator('[data-exact]');
	await exact.waitFor();
	assert.equal((await exact.innerText()).replace(/\D/g, ''), count);

	await page.getByRole('button', { name: 'Full log' }).first().click();
	const dialog = page.getByRole('dialog');
	await until(async () => !/^Loading/.test(await dialog.locator('pre').innerText()));
	assert.match(await dialog.getByRole('heading').innerText(), /Log of run #\d+/);
	await page.keyboard.press('Escape');
	await dialog.waitFor({ state: 'detached' });

	await page.getByText(/^Columns \(/).click();
	await page.getByRole('checkbox', { name: /^email/ }).uncheck();
	await until(async () => (await page.locator('.data-table td[data-col="email"]').count()) === 0);
	assert.match(await page.getByText(/^Columns \(/).innerText(), /Columns \(15\/16\)/);
	await page.getByRole('checkbox', { name: /^email/ }).check();
	await until(async () => (await page.locator('.data-table td[data-col="email"]').count()) > 0);
	await page.keyboard.press('Escape');

	// The choice is kept for this model in this browser, and one click brings every column back.
	await page.getByText(/^Columns \(/).click();
	await page.getByRole('checkbox', { name: /^email/ }).uncheck();
	await page.getByRole('checkbox', { name: /^phone/ }).uncheck();
	await page.reload();
	await page.locator('.data-table td[data-col="id"]').first().waitFor();
	assert.equal(await page.locator('.data-table td[data-col="email"], .data-table td[data-col="phone"]').count(), 0);
	assert.match(await page.getByText(/^Columns \(/).innerText(), /Columns \(14\/16\)/);
	await page.getByText(/^Columns \(/).click();
	await page.getByRole('button', { name: 'Show all columns' }).click();
	await until(async () => (await page.locator('.data-table td[data-col="email"]').count()) > 0);
	assert.ok(await page.getByRole('checkbox', { name: /^phone/ }).isChecked());
	await page.keyboard.press('Escape');
});

test('syncing all models of a CRM follows the parent run and its model runs', async () => {
	await page.goto(`${BASE}/crm/hubspot`);
	await page.getByRole('button', { name: 'Sync all models' }).click();
	const dialog = page.getByRole('dialog');
	await until(async () => /hubspot/.test(await dialog.locator('#command-preview').innerText()));
	await dialog.getByRole('button', { name: /Start sync/ }).click();
	await until(async () => (await dialog.locator('.run-status [data-status="success"], .run-status [data-status="partial"]').count()) === 1, 60000);
	// The model runs settle live too (the last one may land just after the parent).
	await until(async () => (await dialog.locator('.child-runs li').count()) === 4
		&& (await dialog.locator('.child-runs [data-status="success"]').count()) === 4);
	await page.keyboard.press('Escape');
});

test('a running sync can be stopped from the models table', async () => {
	await page.goto(`${BASE}/crm/genius`);
	await page.getByRole('button', { name: 'Sync prospect' }).click();
	const dialog = page.getByRole('dialog');
	await dialog.getByLabel(/Full sync/).check();
	await dialog.getByRole('button', { name: /Start sync/ }).click();
	await dialog.locator('.run-status [data-status="running"]').waitFor({ timeout: 30000 });
	const id = /#(\d+)/.exec(await dialog.locator('.progress-head').innerText())[1];
	await dialog.getByRole('button', { name: 'Close', exact: true }).click();
	await page.getByRole('button', { name: 'Stop prospect' }).click();
	const row = page.locator('tr[data-model="prospect"]');
	await until(async () => (await row.locator('[data-status="cancelled"]').count()) === 1, 60000);
	const [[status, via]] = sql(`SELECT status, requested_via FROM crm_dashboard.sync_history WHERE id = ${id}`);
	assert.deepEqual([status, via], ['cancelled', 'ui']);
});

test('the history shows the sync with who and how, and its details', async () => {
	await page.getByRole('link', { name: 'Sync history', exact: true }).first().click();
	await page.getByRole('heading', { level: 1, name: 'Sync history' }).waitFor();
	await page.getByLabel('CRM', { exact: true }).selectOption('hubspot');
	await page.getByLabel('Model', { exact: true }).selectOption('contact');
	await page.getByLabel('Status', { exact: true }).selectOption('success');
	const id = fullRunId;
	const first = page.locator(`.runs-table tbody tr[data-run="${id}"]`);
	await until(async () => (await page.locator('.runs-table tbody tr').count()) > 0
		&& (await page.locator('.runs-table td[data-label="CRM · model"]').allInnerTexts()).every((t) => t === 'hubspot · contact'));
	await first.waitFor();
	assert.equal(await first.locator('[data-status]').getAttribute('data-status'), 'success');
	assert.equal(await first.locator('td[data-label="By"]').innerText(), ADMIN.user);
	assert.equal(await first.locator('td[data-label="Via"]').innerText(), 'ui');
	await first.getByRole('link', { name: `#${id}` }).click();
	await page.getByRole('heading', { level: 1, name: `Run #${id}` }).waitFor();
	const command = page.locator('.command-box .command');
	await command.waitFor();
	assert.match(await command.innerText(), /--full --batch-size 500/);
	const log = page.locator('.run-log .log-lines');
	await until(async () => (await log.locator('li.log-line').count()) > 0);
	await page.getByRole('heading', { name: 'Metrics' }).waitFor();
});

test('a date range that ends before it starts is pointed out beside the field', async () => {
	await page.goto(`${BASE}/history?from=2026-11-20&to=2026-11-10`);
	const err = page.locator('#err-to');
	await until(async () => /before the start date/.test(await err.innerText()));
	assert.equal(await page.getByLabel('To', { exact: true }).getAttribute('aria-invalid'), 'true');
	assert.equal(await page.locator('.runs-table').count(), 0);
	await page.getByLabel('To', { exact: true }).fill('2026-11-30');
	await until(async () => (await err.innerText()) === '');
	assert.equal(await page.getByLabel('To', { exact: true }).getAttribute('aria-invalid'), null);
});

test('schedules can be added and removed when pg_cron is there', async (t) => {
	await page.getByRole('link', { name: 'Schedules' }).click();
	await page.getByRole('heading', { level: 1, name: 'Schedules' }).waitFor();
	await until(async () => (await page.locator('.alert, .schedule-form, .empty, table').count()) > 0);
	if (await page.getByText('Schedules are unavailable.').count()) {
		t.skip('pg_cron is not installed');
		return;
	}
	await page.getByLabel('CRM', { exact: true }).selectOption('hubspot');
	await page.getByLabel('Model', { exact: true }).selectOption('deal');
	await page.getByLabel('Cron expression').fill('not a cron');
	await page.getByRole('button', { name: /Add schedule/ }).click();
	await until(async () => (await page.locator('.field-error, .alert-error').allInnerTexts()).some((t) => t.length > 0));
	await page.getByLabel('Cron expression').fill('0 3 * * *');
	await page.getByRole('button', { name: /Add schedule/ }).click();
	const row = page.locator('tr[data-schedule]', { hasText: '0 3 * * *' });
	await row.waitFor();
	await row.getByRole('button', { name: /Remove/ }).click();
	await row.waitFor({ state: 'detached' });
});

test('no dialog fired and the CSP was never violated', () => {
	assert.deepEqual(page.dialogs, []);
	assert.deepEqual(page.problems, []);
});
