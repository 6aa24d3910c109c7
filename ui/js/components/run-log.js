// A run's log: numbered lines from the log store (crm_api.sync_log_lines),
// search with the matches highlighted and jump to the next or previous one,
// only the error lines, following a running log as it grows, and the whole
// log as a download.

import { rpc } from '../api.js';
import { h, replace, errorBox } from '../dom.js';

// Lines read at a time; a reader asks again from the line after its last.
const PAGE = 5000;
// Lines kept on screen at most (the oldest go first; the download has all).
const KEEP = 20000;

// The log panel of run id; call .update(run) when the run changes, .stop() to end following.
export function runLog(id) {
	let lines = [];
	let running = false;
	let reading = null;
	let matches = [];
	let current = -1;
	const search = h('input', { type: 'search', id: `log-search-${id}`, placeholder: 'Search the log', autocomplete: 'off', 'aria-controls': `log-lines-${id}` });
	const count = h('span', { class: 'muted small log-count', role: 'status', 'aria-live': 'polite' });
	const prev = h('button', { type: 'button', class: 'btn btn-ghost btn-small', disabled: true, 'aria-label': 'Previous match' }, '↑');
	const next = h('button', { type: 'button', class: 'btn btn-ghost btn-small', disabled: true, 'aria-label': 'Next match' }, '↓');
	const onlyErrors = h('input', { type: 'checkbox', id: `log-errors-${id}` });
	const follow = h('input', { type: 'checkbox', id: `log-follow-${id}`, checked: true });
	const followLabel = h('label', { class: 'log-check', for: `log-follow-${id}` }, follow, ' Follow live');
	const save = h('button', { type: 'button', class: 'btn btn-ghost btn-small' }, 'Download');
	const body = h('ol', { class: 'log-lines', id: `log-lines-${id}`, tabindex: '0', 'aria-label': 'Log lines' });
	const note = h('p', { class: 'muted small log-note' });
	const errorSlot = h('div', { 'aria-live': 'polite' });
	const el = h('div', { class: 'run-log' },
		h('div', { class: 'log-tools', role: 'toolbar', 'aria-label': 'Log tools' },
			h('label', { class: 'sr-only', for: search.id }, 'Search the log'), search, prev, next, count,
			h('label', { class: 'log-check', for: onlyErrors.id }, onlyErrors, ' Only errors'), followLabel, save),
		errorSlot, note, body);

	// Read the lines after the last one shown (all of them at first).
	async function read() {
		if (reading) return reading;
		reading = (async () => {
			try {
				const from = lines.length ? lines[lines.length - 1].line_number + 1 : null;
				const args = from ? { id, from_line: from, max_lines: PAGE } : { id, max_lines: PAGE };
				const rows = await rpc('sync_log_lines', args);
				if (rows.length) {
					lines = lines.concat(rows);
					if (lines.length > KEEP) lines = lines.slice(lines.length - KEEP);
					paint(true);
				} else if (!lines.length) {
					paint(false);
				}
				replace(errorSlot);
			} catch (err) {
				if (err.name !== 'AbortError') replace(errorSlot, errorBox(err, 'Could not load the log'));
			} finally {
				reading = null;
			}
		})();
		return reading;
	}

	// Draw the lines (those with errors only, when asked), with the search's matches marked.
	function paint(grew) {
		const term = search.value.trim().toLowerCase();
		const shown = onlyErrors.checked ? lines.filter((l) => l.is_error) : lines;
		const atBottom = body.scrollHeight - body.scrollTop - body.clientHeight < 40;
		note.textContent = !lines.length ? '(no output recorded)'
			: lines[0].line_number > 1 ? `Lines before ${lines[0].line_number} are not shown here; Download has the whole kept log.` : '';
		body.replaceChildren(...shown.map((l) => h('li', {
			class: l.is_error ? 'log-line is-error' : 'log-line', dataset: { line: String(l.line_number) },
		}, h('span', { class: 'ln', 'aria-hidden': 'true' }, String(l.line_number)), h('span', { class: 'lt' }, ...mark(l.line, term)))));
		matches = [...body.querySelectorAll('mark')];
		if (current >= matches.length) current = matches.length - 1;
		count.textContent = term ? (matches.length ? `${current + 1 > 0 ? current + 1 : 0} of ${matches.length}` : 'no match') : '';
		prev.disabled = next.disabled = !matches.length;
		if (grew && running && follow.checked && (atBottom || !term)) body.scrollTop = body.scrollHeight;
		if (current >= 0) focusMatch(false);
	}

	// Go to the next (or previous) match and bring it into view.
	function jump(step) {
		if (!matches.length) return;
		current = (current + step + matches.length) % matches.length;
		focusMatch(true);
	}

	// Mark the current match and scroll it into view.
	function focusMatch(scroll) {
		for (const m of matches) m.classList.remove('current');
		const m = matches[current];
		if (!m) return;
		m.classList.add('current');
		count.textContent = `${current + 1} of ${matches.length}`;
		if (scroll) m.scrollIntoView({ block: 'center' });
	}

	search.addEventListener('input', () => { current = -1; paint(false); if (matches.length) jump(1); });
	search.addEventListener('keydown', (e) => {
		if (e.key === 'Enter') {
			e.preventDefault();
			jump(e.shiftKey ? -1 : 1);
		}
	});
	next.addEventListener('click', () => jump(1));
	prev.addEventListener('click', () => jump(-1));
	onlyErrors.addEventListener('change', () => { current = -1; paint(false); });
	save.addEventListener('click', async () => {
		try {
			saveText(await rpc('sync_log', { id }), `run-${id}.log`);
		} catch (err) {
			replace(errorSlot, errorBox(err, 'Could not download the log'));
		}
	});

	let timer = null;
	return {
		el,
		// The run changed: follow it while it runs, read once more when it ends.
		update(run) {
			const was = running;
			running = run.status === 'running' || run.status === 'queued';
			followLabel.hidden = !running;
			if (running && !timer) timer = setInterval(read, 2000);
			if (!running && timer) {
				clearInterval(timer);
				timer = null;
			}
			if (running || was || !lines.length) read();
		},
		stop() {
			if (timer) clearInterval(timer);
			timer = null;
		},
	};
}

// Offer text as a file download.
function saveText(text, name) {
	const url = URL.createObjectURL(new Blob([text || ''], { type: 'text/plain;charset=utf-8' }));
	const a = h('a', { href: url, download: name, hidden: true });
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// A line's text as nodes, each case-insensitive occurrence of term in a <mark>.
export function mark(text, term) {
	if (!term) return [text];
	const out = [];
	const lower = text.toLowerCase();
	let at = 0;
	for (let i = lower.indexOf(term); i >= 0; i = lower.indexOf(term, at)) {
		if (i > at) out.push(text.slice(at, i));
		out.push(h('mark', {}, text.slice(i, i + term.length)));
		at = i + term.length;
	}
	if (at < text.length) out.push(text.slice(at));
	return out;
}
