// The form list: keeps every form (page, XML, media) and the pages around it in the phone's
// cache while online, marks each form "available offline", lists the drafts.

import { FORMS_CACHE, config, el, formatTime, start, t } from './common.js';
import { listDrafts, removeDraft } from './outbox.js';

function mark(formId, state) {
  const node = document.querySelector(`[data-wf-offline="${CSS.escape(formId)}"]`);
  if (!node) return;
  node.dataset.state = state;
  node.textContent = { ready: t('offlineReady'), saving: t('offlineSaving'),
                       failed: t('offlineFailed') }[state] || '';
}

async function keep(cache, url) {
  const response = await fetch(url, { cache: 'no-cache', credentials: 'omit' });
  if (!response.ok) throw new Error(`${response.status} ${url}`);
  await cache.put(url, response);
}

// Form URLs of this key that are no longer current (an older version's XML or media, a form
// that was closed) leave the cache.
async function prune(cache, wanted) {
  const prefix = `${location.origin}/f/${config.key}/`;
  for (const request of await cache.keys()) {
    if (request.url.startsWith(prefix) && !wanted.has(request.url)) await cache.delete(request);
  }
}

async function keepForms(registration) {
  if (!('caches' in window) || !registration) {
    for (const form of config.forms) mark(form.id, 'failed');
    const note = document.querySelector('[data-wf-offline-note]');
    if (note) { note.textContent = t('offlineUnsupported'); note.hidden = false; }
    return;
  }
  const cache = await caches.open(FORMS_CACHE);
  const absolute = (u) => new URL(u, location.origin).href;
  const pages = [config.urls.list, config.urls.queue, config.urls.manifest];
  const wanted = new Set(pages.map(absolute));
  if (!navigator.onLine) {
    for (const form of config.forms) {
      const hit = await cache.match(absolute(form.xml));
      mark(form.id, hit ? 'ready' : 'failed');
    }
    return;
  }
  await Promise.all(pages.map((u) => keep(cache, u).catch(() => null)));
  for (const form of config.forms) {
    const urls = [form.page, form.xml, ...Object.values(form.media)];
    urls.forEach((u) => wanted.add(absolute(u)));
    mark(form.id, 'saving');
    try {
      for (const url of urls) {
        // Versioned URLs (?v=md5) already cached are this version: no need to fetch again.
        if (url.includes('?v=') && await cache.match(absolute(url))) continue;
        await keep(cache, url);
      }
      mark(form.id, 'ready');
    } catch (error) {
      mark(form.id, 'failed');
    }
  }
  await prune(cache, wanted);
}

async function showDrafts() {
  const box = document.querySelector('[data-wf-drafts]');
  if (!box) return;
  const drafts = await listDrafts(config.key).catch(() => []);
  box.replaceChildren();
  if (!drafts.length) {
    box.append(el('p', { class: 'wf-muted', text: t('noDrafts') }));
    return;
  }
  const pageOf = new Map(config.forms.map((f) => [f.id, f.page]));
  for (const draft of drafts) {
    const page = pageOf.get(draft.formId) || `/f/${config.key}/${encodeURIComponent(draft.formId)}`;
    box.append(el('li', { class: 'wf-draft', 'data-wf-draft-id': draft.id },
      el('a', { href: `${page}#draft=${encodeURIComponent(draft.id)}` },
         `${draft.formTitle}${draft.label ? ` — ${draft.label}` : ''}`),
      el('span', { class: 'wf-muted', text: t('savedAt', { time: formatTime(draft.savedAt) }) }),
      el('button', { type: 'button', class: 'wf-link', text: t('remove'), onclick: async () => {
        await removeDraft(draft.id);
        showDrafts();
      } })));
  }
}

async function main() {
  const registration = await start();
  showDrafts();
  await keepForms(registration);
}

main();
