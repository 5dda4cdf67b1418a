// ODK Web Forms 0.22 in the page's language (server/webform/renderer.py says why this way).
//
// - PrimeVue's locale, which the renderer's date picker and drop-downs read: the strings from
//   the server, month and day names from the browser's Intl, the date format of the page's
//   language (day first in Indonesian).
// - Every other word of the renderer is English text in its templates: a MutationObserver
//   replaces those strings (text and the title, aria-label, placeholder and alt attributes)
//   wherever the renderer writes them, when the whole string is one of the renderer's. What the
//   form's author wrote (labels, hints, choices, the title) is never touched.
// - The form's language: the one matching the page's language, when the form has it.

const ATTRIBUTES = ['title', 'aria-label', 'placeholder', 'alt'];
// The form's own words, and what is ours: never translated.
const NOT_RENDERER = [
  '.control-text', '.text-content', 'h1', '[role="option"]', '.p-select-label',
  '.p-multiselect-label-container', '[data-wf-own]', '.wf-top',
  '.wf-toolbar', '.wf-banner', '.wf-net', 'script', 'style', 'textarea',
].join(',');

// ---- the renderer's strings --------------------------------------------------------------------

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function makeTranslator(pairs) {
  const exact = new Map();
  const patterns = [];
  for (const [english, translated] of pairs || []) {
    if (!english.includes('%(')) {
      exact.set(english, translated);
      continue;
    }
    const names = [];
    const source = english.split(/(%\(\w+\)s)/).map((part) => {
      const name = /^%\((\w+)\)s$/.exec(part);
      if (!name) return escapeRegExp(part);
      names.push(name[1]);
      return '(.+?)';
    }).join('');
    patterns.push({ regex: new RegExp(`^${source}$`), names, translated });
  }

  // The whole (trimmed) string, or null when it is not one of the renderer's.
  function whole(text) {
    if (exact.has(text)) return exact.get(text);
    for (const { regex, names, translated } of patterns) {
      const match = regex.exec(text);
      if (!match) continue;
      let result = translated;
      names.forEach((name, index) => {
        const value = match[index + 1];
        result = result.split(`%(${name})s`).join(exact.get(value) ?? value);
      });
      return result;
    }
    return null;
  }

  return function translate(text) {
    if (!text) return null;
    const trimmed = text.replace(/\s+/g, ' ').trim();
    if (!trimmed) return null;
    const done = whole(trimmed);
    if (done === null || done === trimmed) return null;
    const lead = /^\s*/.exec(text)[0];
    const tail = /\s*$/.exec(text)[0];
    return lead + done + tail;
  };
}

function renderersOwn(element) {
  return !!element && !element.closest(NOT_RENDERER);
}

function translateTextNode(node, translate) {
  if (!renderersOwn(node.parentElement)) return;
  const translated = translate(node.nodeValue);
  if (translated !== null && translated !== node.nodeValue) node.nodeValue = translated;
}

function translateAttributes(element, translate) {
  if (!renderersOwn(element)) return;
  for (const name of ATTRIBUTES) {
    const value = element.getAttribute(name);
    if (value === null) continue;
    const translated = translate(value);
    if (translated !== null && translated !== value) element.setAttribute(name, translated);
  }
}

function translateTree(root, translate) {
  if (root.nodeType === Node.TEXT_NODE) {
    translateTextNode(root, translate);
    return;
  }
  if (root.nodeType !== Node.ELEMENT_NODE) return;
  translateAttributes(root, translate);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.nodeType === Node.TEXT_NODE) translateTextNode(node, translate);
    else translateAttributes(node, translate);
  }
}

// Translate what is in the page now and whatever the renderer writes later (its dialogs and
// menus are appended to <body>, so the whole body is watched).
export function watchRendererText(pairs, root = document.body) {
  if (!pairs || !pairs.length) return null;
  const translate = makeTranslator(pairs);
  translateTree(root, translate);
  const observer = new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === 'characterData') translateTextNode(record.target, translate);
      else if (record.type === 'attributes') translateAttributes(record.target, translate);
      else record.addedNodes.forEach((node) => translateTree(node, translate));
    }
  });
  observer.observe(root, {
    subtree: true, childList: true, characterData: true, attributes: true,
    attributeFilter: ATTRIBUTES,
  });
  return { translate, stop: () => observer.disconnect() };
}

// ---- PrimeVue's locale -------------------------------------------------------------------------

function names(lang, count, make, options) {
  const format = new Intl.DateTimeFormat(lang, options);
  return Array.from({ length: count }, (_, index) => format.format(make(index)));
}

function firstDayOfWeek(lang) {
  try {
    const locale = new Intl.Locale(lang === 'id' ? 'id-ID' : navigator.language || lang);
    const info = locale.getWeekInfo ? locale.getWeekInfo() : locale.weekInfo;
    if (info && info.firstDay) return info.firstDay % 7;  // Intl: 1 = Monday … 7 = Sunday
  } catch (_) { /* an older browser */ }
  return lang === 'id' ? 0 : null;
}

// The phone's own order of day, month and year ("dmy", "mdy" or "ymd").
export function localeDateOrder(locale = navigator.language) {
  try {
    const parts = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'numeric',
                                                    year: 'numeric' }).formatToParts(new Date(2026, 11, 15));
    const order = parts.filter((p) => ['day', 'month', 'year'].includes(p.type))
      .map((p) => p.type[0]).join('');
    return ['dmy', 'mdy', 'ymd'].includes(order) ? order : 'dmy';
  } catch (_) {
    return 'dmy';
  }
}

export const DATE_FORMATS = { dmy: 'dd/mm/yy', mdy: 'mm/dd/yy', ymd: 'yy-mm-dd' };

export function primeVueLocale(renderer, order) {
  const lang = renderer.lang || 'id';
  const locale = { ...(renderer.primevue || {}), dateFormat: DATE_FORMATS[order] };
  if (lang !== 'en') {
    // 2023-01-01 was a Sunday: PrimeVue's day names start on Sunday.
    locale.dayNames = names(lang, 7, (i) => new Date(2023, 0, 1 + i), { weekday: 'long' });
    locale.dayNamesShort = names(lang, 7, (i) => new Date(2023, 0, 1 + i), { weekday: 'short' });
    locale.dayNamesMin = locale.dayNamesShort;  // "Sen", "Sel": two letters would be alike
    locale.monthNames = names(lang, 12, (i) => new Date(2026, i, 1), { month: 'long' });
    locale.monthNamesShort = names(lang, 12, (i) => new Date(2026, i, 1), { month: 'short' });
  }
  const first = firstDayOfWeek(lang);
  if (first !== null) locale.firstDayOfWeek = first;
  return locale;
}

// Call after app.use(webFormsPlugin): the plugin installs PrimeVue, whose config is reactive.
export function applyPrimeVueLocale(app, locale) {
  const primevue = app.config.globalProperties.$primevue;
  if (!primevue || !primevue.config) return;
  const current = primevue.config.locale || {};
  primevue.config.locale = { ...current, ...locale,
                             aria: { ...(current.aria || {}), ...(locale.aria || {}) } };
}

// ---- the form's language -----------------------------------------------------------------------

const LANGUAGE_NAMES = {
  id: /(^|[^a-z])(id|ind|indonesian|indonesia|bahasa indonesia|bahasa)([^a-z]|$)/i,
  en: /(^|[^a-z])(en|eng|english|inggris)([^a-z]|$)/i,
};

// The form's language named like the page's ("Indonesian (id)", "Bahasa Indonesia", "id"),
// chosen once when the form opens; the officer can still switch.
export function pickFormLanguage(root, lang) {
  const wanted = LANGUAGE_NAMES[lang];
  if (!wanted || !root || !Array.isArray(root.languages) || !root.setLanguage) return false;
  const languages = root.languages.filter((l) => !l.isSyntheticDefault && l.language);
  const active = root.currentState && root.currentState.activeLanguage;
  if (active && wanted.test(active.language || '')) return false;
  const match = languages.find((l) => wanted.test(l.language));
  if (!match) return false;
  try {
    root.setLanguage(match);
    return true;
  } catch (_) {
    return false;
  }
}
