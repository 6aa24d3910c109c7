// History at scale in the UI: the run log (line numbers, search with
// highlight and jump to next, only errors, download), the analytics charts
// at phone, tablet and desktop widths in light and dark mode with their
// table alternative, the heat strip, and the failures page updating live.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BASE, ADMIN, WIDTHS, launch, newPage, login, shoot, until, sql } from './lib.mjs';

let browser;
let page;

before(async () => {
	browser = await launch();
	page = await newPage(browser);
	await login(page, ADMIN);
});
after(async () => { await browser?.close(); });

// A finished run of hubspot contact with a log of 300 lines, three of them errors about a deadlock.
function runWithLog() {
	const [[id]] = sql(`WITH r AS (
		INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, records_processed)
		VALUES ('hubspot', 'contact', 'success', now() - interval '2 hours', now() - interval '119 minutes', 300) RETURNING id)
		INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body)
		SELECT r.id, 1, 1, 0, string_agg(CASE WHEN l % 100 = 50 THEN format('ERROR: deadlock detected on row %s', l)
		                                      ELSE format('fetched page %s', l) END, E'\\n' ORDER BY l) || E'\\n'
		  FROM r, generate_series(1, 300) l GROUP BY r.id RETURNING run_id`);
	return id;
}

test('the run log: line numbers, search, jump to next, only errors, download', async () => {
	const id = runWithLog();
	await page.goto(`${BASE}/history/${id}`);
	const lines = page.locator('.run-log .log-line');
	await until(async () => (await lines.count()) === 300);
	assert.equal(await lines.nth(49).locator('.ln').innerText(), '50');
	assert.match(await lines.nth(49).innerText(), /deadlock detected on row 50/);

	const search = page.getByRole('searchbox', { name: 'Search the log' });
	await search.fill('DEADLOCK');
	await until(async () => (await page.locator('.run-log mark').count()) === 3);
	assert.equal(await page.locator('.run-log .log-count').innerText(), '1 of 3');
	assert.equal(await page.locator('.run-log mark.current').innerText(), 'deadlock');
	await search.press('Enter');
	assert.equal(await page.locator('.run-log .log-count').innerText(), '2 of 3');
	assert.equal(await page.locator('.run-log mark.current').locator('xpath=ancestor::li').getAttribute('data-line'), '150');
	await page.getByRole('button', { name: 'Next match' }).click();
	await page.getByRole('button', { name: 'Next match' }).click();
	assert.equal(await page.locator('.run-log .log-count').innerText(), '1 of 3');
	await page.getByRole('button', { name: 'Previous match' }).click();
	assert.equal(await page.locator('.run-log .log-count').innerText(), '3 of 3');
	await search.fill('no such words');
	await until(async () => (await page.locator('.run-log .log-count').innerText()) === 'no match');

	await page.getByLabel('Only errors').check();
	await until(async () => (await lines.count()) === 3);
	assert.deepEqual(await lines.locator('.ln').allInnerTexts(), ['50', '150', '250']);
	await page.getByLabel('Only errors').uncheck();
	await until(async () => (await lines.count()) === 300);

	const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
	assert.equal(download.suggestedFilename(), `run-${id}.log`);
	const text = readFileSync(await download.path(), 'utf8');
	assert.equal(text.split('\n').length, 301);
	assert.match(text, /^fetched page 1\n/);
	assert.deepEqual(page.problems, []);
});

test('a running log is followed as it grows', async () => {
	const [[id]] = sql(`INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time)
		VALUES ('hubspot', 'deal', 'running', now()) RETURNING id`);
	try {
		sql(`INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body) VALUES (${id}, 1, 1, 0, E'first line\\n')`);
		await page.goto(`${BASE}/history/${id}`);
		const lines = page.locator('.run-log .log-line');
		await until(async () => (await lines.count()) === 1);
		assert.equal(await page.getByLabel('Follow live').isChecked(), true);
		sql(`INSERT INTO crm_dashboard.sync_log_chunk (run_id, seq, first_line, first_byte, body) VALUES (${id}, 2, 2, 11, E'second line\\nthird line\\n')`);
		await until(async () => (await lines.count()) === 3);
		assert.deepEqual(await lines.locator('.ln').allInnerTexts(), ['1', '2', '3']);
		assert.equal(await lines.nth(2).locator('.lt').innerText(), 'third line');
	} finally {
		sql(`UPDATE crm_dashboard.sync_history SET status = 'cancelled', end_time = now() WHERE id = ${id}`);
	}
});

test('analytics charts at three widths, in light and dark mode, with a table alternative', async () => {
	// thirty days of hubspot runs, one a day or so, of every outcome
	sql(`INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, records_processed, records_failed)
		SELECT 'hubspot', 'deal', (ARRAY['success', 'success', 'partial', 'failed'])[1 + g % 4],
		       now() - g * interval '23 hours', now() - g * interval '23 hours' + (30 + g) * interval '1 second', 100 + g, g % 3
		  FROM generate_series(1, 30) g`);
	for (const scheme of ['light', 'dark']) {
		await page.emulateMedia({ colorScheme: scheme });
		await page.goto(`${BASE}/analytics?crm=hubspot`);
		await page.getByRole('heading', { level: 1, name: 'Analytics' }).waitFor();
		await until(async () => (await page.locator('.chart canvas').count()) === 3);
		await until(async () => (await page.locator('.heat-strip tr[data-model="deal"] .cell').count()) > 0);
		for (const [name, [width, height]] of Object.entries(WIDTHS)) {
			await page.setViewportSize({ width, height });
			// the charts are redrawn at their card's width, never wider than the page
			await until(async () => {
				const boxes = await page.locator('.chart canvas').evaluateAll((cs) => cs.map((c) => c.getBoundingClientRect()));
				return boxes.length === 3 && boxes.every((b) => b.width > 150 && b.right <= width + 1);
			});
			assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, `no sideways scroll at ${name}`);
		}
		// the theme's colours: the page background is dark in dark mode
		const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
		const [r, g, b] = bg.match(/\d+/g).map(Number);
		assert.equal(r + g + b < 150, scheme === 'dark', `background ${bg} in ${scheme} mode`);
		await shoot(page, `analytics-${scheme}`);
	}
	await page.emulateMedia({ colorScheme: 'light' });
	// every chart has its figures as a table: a row per day of the last 30
	const tables = page.locator('.chart .chart-table');
	assert.equal(await tables.count(), 3);
	await page.locator('.chart details summary').first().click();
	assert.equal(await tables.first().locator('tbody tr').count(), 30);
	assert.equal(await page.getByRole('figure', { name: 'Success rate per day' }).count(), 1);
	// the heat strip's cells say what they are and link to their runs
	const cell = page.locator('.heat-strip tr[data-model="deal"] .cell').last();
	assert.match(await cell.getAttribute('aria-label'), /^Run #\d+: /);
	assert.match(await cell.getAttribute('href'), /^\/history\/\d+$/);
	// the figures per period
	await until(async () => (await page.locator('.analytics-table tr[data-period="30d"]').count()) > 0);
	assert.deepEqual(page.problems, []);
});

test('the failures page groups failures and its counts update live', async () => {
	const insert = (n) => sql(`INSERT INTO crm_dashboard.sync_history (crm_source, sync_type, status, start_time, end_time, error_message)
		SELECT 'hubspot', (ARRAY['contact', 'deal'])[1 + g % 2], 'failed', now() - g * interval '1 hour', now() - g * interval '1 hour' + interval '5 seconds',
		       format('exited with code 1: upstream gateway %s timed out after %s s', 'gw-' || (1000 + g), 30 + g)
		  FROM generate_series(1, ${n}) g`);
	insert(4);
	await page.goto(`${BASE}/failures`);
	const card = page.locator('li.failure[data-fingerprint="exited with code <n>: upstream gateway gw-<n> timed out after <n> s"]');
	await card.waitFor();
	assert.equal(await card.locator('[data-stat="runs"] dd').innerText(), '4');
	assert.equal(await card.locator('[data-stat="models"] dd').innerText(), '2');
	insert(3);
	await until(async () => (await card.locator('[data-stat="runs"] dd').innerText()) === '7');
	await card.locator('summary').click();
	await until(async () => (await card.locator('.child-runs li').count()) === 7);
	assert.match(await card.locator('.child-runs li a').first().getAttribute('href'), /^\/history\/\d+$/);
	await shoot(page, 'failures');
	assert.deepEqual(page.problems, []);
});
