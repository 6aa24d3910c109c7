// Shared helpers of the browser tests: Chromium, sign-in, SQL, screenshots.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BASE = process.env.CRM_URL || 'http://127.0.0.1:54490';
export const ADMIN = { user: process.env.CRM_ADMIN_USER || 'admin', password: process.env.CRM_ADMIN_PASSWORD };
export const VIEWER = { user: process.env.CRM_VIEWER_USER || 'viewer', password: process.env.CRM_VIEWER_PASSWORD };
export const WIDTHS = { phone: [375, 812], tablet: [768, 1024], desktop: [1440, 900] };
export const SHOTS = join(dirname(dirname(fileURLToPath(import.meta.url))), 'screenshots');

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
	'--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage'];

// Launch Debian's Chromium.
export function launch() {
	return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS, headless: true });
}

// A new page at desktop size that records dialogs, page errors and CSP violations.
export async function newPage(browser, { width = 1440, height = 900 } = {}) {
	const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true, locale: 'en-US', timezoneId: 'UTC' });
	const page = await context.newPage();
	page.dialogs = [];
	page.problems = [];
	page.on('dialog', (d) => {
		page.dialogs.push(d.message());
		d.dismiss().catch(() => {});
	});
	page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
	page.on('console', (m) => {
		if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) page.problems.push(m.text());
	});
	// Generous: a CI machine with two busy cores may be slow, never wrong.
	page.setDefaultTimeout(30000);
	return page;
}

// Sign in through the login form and wait for the overview.
export async function login(page, { user, password }) {
	await page.goto(`${BASE}/login`);
	await page.getByLabel('Username').fill(user);
	await page.getByLabel('Password').fill(password);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.getByRole('heading', { level: 1, name: 'CRM overview' }).waitFor();
}

// Run one SQL query through psql (PGHOST etc. from run.sh); rows of tab-separated fields.
export function sql(query) {
	const out = execFileSync('psql', ['-X', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', query], { encoding: 'utf8' });
	return out.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

// Save screenshots of the current page at phone, tablet and desktop widths
// (the whole page, or only the viewport when a modal is open).
export async function shoot(page, name, { fullPage = true } = {}) {
	mkdirSync(SHOTS, { recursive: true });
	const original = page.viewportSize();
	for (const [w, hgt] of Object.values(WIDTHS)) {
		await page.setViewportSize({ width: w, height: hgt });
		// Two animation frames: the new width has been laid out and painted.
		await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
		await page.screenshot({ path: join(SHOTS, `${name}-${w}.png`), fullPage, animations: 'disabled' });
	}
	await page.setViewportSize(original);
}

// Poll fn until it returns a truthy value (or throw after timeout ms).
export async function until(fn, timeout = 30000, interval = 200) {
	const end = Date.now() + timeout;
	let last;
	while (Date.now() < end) {
		last = await fn();
		if (last) return last;
		await new Promise((r) => setTimeout(r, interval));
	}
	throw new Error(`timed out after ${timeout} ms (last: ${JSON.stringify(last)})`);
}

// Parse CSV text (RFC 4180 quoting) into arrays of fields.
export function parseCsv(text) {
	const rows = [];
	let row = [];
	let field = '';
	let quoted = false;
	for (let i = 0; i < text.length; i++) {
		const c = text[i];
		if (quoted) {
			if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false;
			else field += c;
		} else if (c === '"') quoted = true;
		else if (c === ',') { row.push(field); field = ''; } else if (c === '\n' || c === '\r') {
			if (c === '\r' && text[i + 1] === '\n') i++;
			row.push(field);
			rows.push(row);
			row = [];
			field = '';
		} else field += c;
	}
	if (field !== '' || row.length) {
		row.push(field);
		rows.push(row);
	}
	return rows;
}
