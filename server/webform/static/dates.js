// Typed dates in the renderer's date picker (PrimeVue's DatePicker).
//
// The picker reads and shows dates in PrimeVue's locale format, which localize.js sets to the
// page's order (dd/mm/yyyy in Indonesian). It understands only that exact shape, and anything
// else vanishes without a word as soon as its calendar closes (Tab, Enter, Escape, a tap
// elsewhere: it re-renders the field from its last good value). So, before the picker sees
// those keys or the field losing focus (capture phase), this rewrites what it can understand
// into the picker's format ("15-12-2026", "15.12.26", "2026-12-15", "15122026" → "15/12/2026"),
// and says so under the field when it cannot: a typed date is never dropped silently.

const SEPARATORS = '[-/. ]';
const CLOSING_KEYS = new Set(['Enter', 'Tab', 'Escape']);  // the picker closes its calendar

function valid(year, month, day) {
  if (!(year >= 1000 && year <= 9999 && month >= 1 && month <= 12 && day >= 1)) return null;
  const date = new Date(year, month - 1, day);
  if (date.getFullYear() !== year || date.getMonth() !== month - 1 || date.getDate() !== day) {
    return null;
  }
  return { year, month, day };
}

function fullYear(text) {
  const year = parseInt(text, 10);
  return text.length === 2 ? 2000 + year : year;
}

// Text -> {year, month, day}, or null. `order` is how the page writes dates: "dmy", "mdy" or
// "ymd"; a four-digit year first is always year-month-day.
export function parseTypedDate(text, order = 'dmy') {
  const s = String(text || '').trim();
  let m = new RegExp(`^(\\d{4})${SEPARATORS}(\\d{1,2})${SEPARATORS}(\\d{1,2})$`).exec(s);
  if (m) return valid(+m[1], +m[2], +m[3]);
  m = new RegExp(`^(\\d{1,2})${SEPARATORS}(\\d{1,2})${SEPARATORS}(\\d{4}|\\d{2})$`).exec(s);
  if (m) {
    const [first, second, year] = [+m[1], +m[2], fullYear(m[3])];
    return order === 'mdy' ? valid(year, first, second) : valid(year, second, first);
  }
  m = /^(\d{2})(\d{2})(\d{4})$/.exec(s);  // 15122026
  if (m) {
    return order === 'mdy' ? valid(+m[3], +m[1], +m[2]) : valid(+m[3], +m[2], +m[1]);
  }
  return null;
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

export function formatDate({ year, month, day }, order = 'dmy') {
  if (order === 'ymd') return `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
  if (order === 'mdy') return `${pad(month)}/${pad(day)}/${pad(year, 4)}`;
  return `${pad(day)}/${pad(month)}/${pad(year, 4)}`;
}

// One date question: `root` is the picker's element (InputDate's root). Returns a cleanup.
export function enhanceDateInput(root, { order, placeholder, problem }) {
  const input = root && root.querySelector('input');
  if (!input) return () => {};
  if (placeholder) input.setAttribute('placeholder', placeholder);
  const note = document.createElement('p');
  note.className = 'wf-date-problem';
  note.setAttribute('data-wf-own', '');
  note.setAttribute('data-wf-date-problem', '');
  note.setAttribute('role', 'alert');
  note.hidden = true;
  root.after(note);

  let typed = false;  // the officer typed since the last look (the picker's own writes are not)
  const settle = () => {
    if (!typed) return;
    typed = false;
    const text = input.value.trim();
    note.hidden = true;
    if (!text) return;
    const date = parseTypedDate(text, order);
    if (!date) {
      note.textContent = problem(text, formatDate({ year: 2026, month: 12, day: 15 }, order));
      note.hidden = false;
      return;
    }
    const canonical = formatDate(date, order);
    if (canonical !== input.value) {
      input.value = canonical;
      // The picker parses on `input`: this is the value it keeps.
      input.dispatchEvent(new Event('input', { bubbles: true }));  // not trusted: not typed
    }
  };
  const onInput = (event) => { if (event.target === input && event.isTrusted) typed = true; };
  const onBlur = (event) => { if (event.target === input) settle(); };
  const onKey = (event) => {
    if (event.target === input && CLOSING_KEYS.has(event.key)) settle();
  };
  // Capture phase: before the picker's own listeners on the input.
  root.addEventListener('input', onInput, true);
  root.addEventListener('blur', onBlur, true);
  root.addEventListener('keydown', onKey, true);
  return () => {
    root.removeEventListener('input', onInput, true);
    root.removeEventListener('blur', onBlur, true);
    root.removeEventListener('keydown', onKey, true);
    note.remove();
  };
}
