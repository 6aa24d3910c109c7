// Screenshots of every page at 375, 768 and 1440 px (saved under screenshots/).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, ADMIN, launch, newPage, login, shoot, until, sql } from './lib.mjs';

let browser;
let page;

before(async () => {
	browser = await launch();
	page = await newPage(browser);
});
after(async () => { await browser?.close(); });

// Wait until no loading indicator is left on the page.
const settled = () => until(async () => (await page.locator('.loading').count()) === 0);

test('every page at phone, tablet and desktop widths', async () => {
	await page.goto(`${BASE}/login`);
	await page.getByLabel('Username').waitFor();
	await shoot(page, 'login');
	await login(page, ADMIN);
	await settled();
	await shoot(page, 'overview');

	await page.goto(`${BASE}/crm/hubspot`);
	await page.locator('tr[data-model]').first().waitFor();
	await shoot(page, 'crm-models');

	await page.getByRole('button', { name: 'Sync contact' }).click();
	const dialog = page.getByRole('dialog');
	await dialog.getByLabel(/Full sync/).check();
	await dialog.getByLabel('Batch size').fill('500');
	await until(async () => /--batch-size 500/.test(await dialog.locator('#command-preview').innerText()));
	await shoot(page, 'sync-modal', { fullPage: false });
	await dialog.getByRole('button', { name: /Start sync/ }).click();
	await until(async () => /\d+ \/ \d/.test(await dialog.locator('[data-stat="progress"]').innerText())
		&& !/no output yet/.test(await dialog.locator('.log').innerText()));
	await shoot(page, 'sync-progress', { fullPage: false });
	await dialog.locator('.run-status [data-status="success"]').waitFor({ timeout: 60000 });
	await page.keyboard.press('Escape');

	await page.goto(`${BASE}/crm/hubspot/contact`);
	await page.locator('.data-table').waitFor();
	await settled();
	await shoot(page, 'model-detail');

	await page.goto(`${BASE}/crm/leadconduit/lead`);
	const raw = page.locator('.data-table td[data-col="raw"]').first();
	await raw.getByRole('button', { name: 'Expand' }).click();
	await page.locator('.data-table pre.json-full').first().waitFor();
	await shoot(page, 'model-json');

	await page.goto(`${BASE}/history`);
	await page.locator('.runs-table').waitFor();
	await shoot(page, 'history');

	await page.locator('.runs-table tbody tr a[href^="/history/"]').first().click();
	await page.getByRole('heading', { name: 'Metrics' }).waitFor();
	await settled();
	await shoot(page, 'run-details');

	// With pg_cron, show a realistic list: one nightly full sync.
	const [[cron]] = sql(`SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'`);
	const [[job]] = cron === '1' ? sql(`SELECT crm_api.schedule_sync('hubspot', 'contact', '0 3 * * *', '{"full": true}')`) : [[null]];
	await page.goto(`${BASE}/schedules`);
	await until(async () => (await page.locator('.alert, .empty, table').count()) > 0);
	await shoot(page, 'schedules');
	if (job) sql(`SELECT crm_api.unschedule_sync(${job})`);
	assert.deepEqual(page.problems, []);
});

test('keyboard: the sync modal works without a mouse, keeps focus inside and closes with Escape', async () => {
	await page.goto(`${BASE}/crm/hubspot`);
	const opener = page.getByRole('button', { name: 'Sync deal' });
	await opener.focus();
	await page.keyboard.press('Enter');
	const dialog = page.getByRole('dialog');
	await dialog.waitFor();
	const preview = dialog.locator('#command-preview');
	await until(async () => /deal/.test(await preview.innerText()));
	// Focus starts on the first option; Space ticks it and the command follows.
	assert.equal(await page.evaluate(() => document.activeElement.id), 'opt-full');
	await page.keyboard.press('Space');
	await until(async () => /--full/.test(await preview.innerText()));
	// Tab to the batch size, type a value out of range: the message sits beside the field.
	while (await page.evaluate(() => document.activeElement.id) !== 'opt-batch_size') await page.keyboard.press('Tab');
	await page.keyboard.type('100001');
	const err = dialog.locator('#err-batch_size');
	await until(async () => /out of range: 100001/.test(await err.innerText()));
	assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-invalid')), 'true');
	assert.match(await page.evaluate(() => document.activeElement.getAttribute('aria-describedby')), /err-batch_size/);
	for (let i = 0; i < 25; i++) {
		await page.keyboard.press('Tab');
		assert.ok(await dialog.evaluate((d) => d.contains(document.activeElement)), `focus stayed in the dialog after ${i + 1} tabs`);
	}
	const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
	assert.notEqual(outline, 'none', 'the focused control shows a focus ring');
	await page.keyboard.press('Escape');
	await dialog.waitFor({ state: 'detached' });
	assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Sync deal');
});

test('keyboard: sort headers, the column chooser and the pager answer Enter, Space and Escape', async () => {
	await page.goto(`${BASE}/crm/hubspot/deal`);
	const rows = page.locator('.data-table tbody tr');
	await rows.first().waitFor();
	const chooser = page.locator('details.dropdown');
	await chooser.locator('summary').focus();
	await page.keyboard.press('Space');
	await until(async () => chooser.evaluate((d) => d.open));
	await page.keyboard.press('Tab');
	assert.ok(await chooser.evaluate((d) => d.contains(document.activeElement)), 'Tab goes into the open chooser');
	await page.keyboard.press('Escape');
	await until(async () => !(await chooser.evaluate((d) => d.open)));
	assert.equal(await page.evaluate(() => document.activeElement.tagName), 'SUMMARY');

	const header = page.locator('.data-table th').nth(1);
	await header.getByRole('button').focus();
	await page.keyboard.press('Enter');
	await until(async () => (await page.locator('.data-table th').nth(1).getAttribute('aria-sort')) === 'ascending');
	assert.equal(await page.evaluate(() => document.activeElement.closest('th')?.getAttribute('aria-sort')), 'ascending', 'focus stays on the header');
	await page.keyboard.press('Space');
	await until(async () => (await page.locator('.data-table th').nth(1).getAttribute('aria-sort')) === 'descending');
	const info = page.locator('.data-card .page-info');
	await page.getByRole('button', { name: 'Next →' }).focus();
	await page.keyboard.press('Enter');
	await until(async () => /^Page 2/.test(await info.innerText()));
	assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Next →', 'focus stays on the pager');
	assert.deepEqual(page.problems, []);
});
