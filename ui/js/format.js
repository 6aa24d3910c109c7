// Formatting numbers, times and durations for people.

const intFmt = new Intl.NumberFormat();
const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

// 12345 → "12,345"; null → "—".
export function int(n) {
	return n === null || n === undefined || Number.isNaN(Number(n)) ? '—' : intFmt.format(Number(n));
}

// 1234567 → "1.2M" (with the exact figure kept for a title).
export function compact(n) {
	return n === null || n === undefined || Number(n) < 0 ? '—' : compactFmt.format(Number(n));
}

// A Date from ISO 8601 or PostgreSQL's text form ("2026-11-25 12:05:02.7+00"), for every browser.
export function toDate(value) {
	if (!value) return new Date(NaN);
	const s = String(value).replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00');
	return new Date(s);
}

// A day in the browser's time zone as YYYY-MM-DD (today by default), as date inputs take it.
export function localDay(d = new Date()) {
	return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

// An ISO time → "12 Nov 2026, 14:03:22" in the browser's locale.
export function dateTime(iso) {
	if (!iso) return '—';
	const d = toDate(iso);
	return Number.isNaN(d.getTime()) ? String(iso) : dateTimeFmt.format(d);
}

// An ISO time → "3 minutes ago" / "in 2 hours"; "never" when absent.
export function relative(iso, now = Date.now()) {
	if (!iso) return 'never';
	const secs = (toDate(iso).getTime() - now) / 1000;
	const abs = Math.abs(secs);
	if (abs < 45) return secs <= 0 ? 'just now' : 'in a few seconds';
	const units = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60]];
	for (const [unit, size] of units) {
		if (abs >= size) return relFmt.format(Math.round(secs / size), unit);
	}
	return relFmt.format(Math.round(secs / 60), 'minute');
}

// Seconds → "45 s", "3 min 05 s", "1 h 02 min".
export function duration(secs) {
	if (secs === null || secs === undefined || Number.isNaN(Number(secs))) return '—';
	let s = Math.max(0, Math.round(Number(secs)));
	if (s < 60) return `${s} s`;
	const h = Math.floor(s / 3600);
	s -= h * 3600;
	const m = Math.floor(s / 60);
	s -= m * 60;
	if (h > 0) return `${h} h ${String(m).padStart(2, '0')} min`;
	return `${m} min ${String(s).padStart(2, '0')} s`;
}

// Seconds between two ISO times (end defaults to now).
export function secondsBetween(startIso, endIso) {
	if (!startIso) return null;
	const end = endIso ? toDate(endIso).getTime() : Date.now();
	return Math.max(0, (end - toDate(startIso).getTime()) / 1000);
}

// Records per second → "1,234/s".
export function rate(r) {
	if (r === null || r === undefined || !Number.isFinite(Number(r))) return '—';
	const n = Number(r);
	return `${n >= 100 ? intFmt.format(Math.round(n)) : n.toFixed(1)}/s`;
}

// An argv array → one shell-like line, quoting words that need it (display only).
export function commandLine(argv) {
	return (argv || []).map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${String(w).replace(/'/g, `'\\''`)}'`)).join(' ');
}

// "hubspot", "contact" → "contact"; model names shown as they are.
export function modelLabel(model) {
	return model === 'all' ? 'all models' : model;
}
