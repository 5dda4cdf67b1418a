// One form: ODK Web Forms (a Vue component) mounted in our page. Finished forms go to the
// outbox (outbox.js), drafts stay on the phone and reopen through the renderer's edit input.
// The renderer speaks the page's language (localize.js); signatures, files and typed dates
// get what the renderer lacks (widgets.js, dates.js).

import { createApp, h } from 'vue';
import { OdkWebForm, webFormsPlugin, POST_SUBMIT__NEW_INSTANCE } from '../web-forms/index.js';
import { banner, config, start, t } from './common.js';
import {
  applyPrimeVueLocale, localeDateOrder, pickFormLanguage, primeVueLocale, watchRendererText,
} from './localize.js';
import { widgetsMixin } from './widgets.js';
import {
  enqueue, getDraft, instanceInfo, payloadParts, removeDraft, saveDraft, sync,
} from './outbox.js';

const form = config.form;
const renderer = config.renderer || {};
const dateOrder = renderer.dateOrder || localeDateOrder();
const mountPoint = document.getElementById('wf-form');
let currentRoot = null;  // the renderer's form instance (for drafts)
let currentDraft = null;  // the draft this page was opened from, if any
const languagePicked = new WeakSet();

function seeRoot(root) {
  if (!root || !root.prepareInstancePayload) return;
  currentRoot = root;
  if (!languagePicked.has(root)) {
    languagePicked.add(root);
    // The form's language named like the page's, once per instance (not during a render).
    Promise.resolve().then(() => pickFormLanguage(root, renderer.lang));
  }
}

// The renderer keeps its form instance to itself; its header component receives it as the
// `form` prop, so a global mixin can see it (after a reset too).
const grabRoot = {
  created() { seeRoot(this.$props?.form); },
  beforeUpdate() { seeRoot(this.$props?.form); },
};

const DATE_PLACEHOLDERS = { mdy: 'mm/dd/yyyy', ymd: 'yyyy-mm-dd' };
const widgets = widgetsMixin({
  t,
  maxBytes: config.maxBytes,
  dates: {
    order: dateOrder,
    placeholder: DATE_PLACEHOLDERS[dateOrder] || t('datePlaceholder'),
    problem: (text, example) => t('dateNotUnderstood', { text, example }),
  },
});

async function fetchFormAttachment(url) {
  const href = String(url && url.href !== undefined ? url.href : url);
  const name = decodeURIComponent(href.split('/').pop() || '');
  const target = form.media[name];
  if (!target) return new Response('', { status: 404 });
  return fetch(target);
}

function record(parts, info) {
  return {
    id: info.instanceID, key: config.key, formId: form.id, formTitle: form.title,
    version: form.version, submissionUrl: config.urls.submission,
    instanceName: info.instanceName || '', xml: parts.xml, files: parts.files,
  };
}

async function onSubmit(payload, callback) {
  try {
    const parts = await payloadParts(payload.data[0], { dropDeprecated: !!currentDraft });
    const info = instanceInfo(parts.xmlText);
    if (!info.instanceID) throw new Error('instanceID');
    await enqueue(record(parts, info));
    if (currentDraft) {
      await removeDraft(currentDraft.id);
      currentDraft = null;
      history.replaceState(null, '', location.pathname);
    }
    callback({ next: POST_SUBMIT__NEW_INSTANCE });
    banner(t('queued'), 'ok');
    window.scrollTo(0, 0);
    sync().catch(() => {});
  } catch (error) {
    banner(t('storageFailed', { error: error && error.message ? error.message : String(error) }),
           'error');
    callback();
  }
}

async function onSaveDraft() {
  if (!currentRoot) return;
  try {
    const payload = await currentRoot.prepareInstancePayload({ payloadType: 'monolithic' });
    const parts = await payloadParts(payload.data[0], { dropDeprecated: true });
    const info = instanceInfo(parts.xmlText);
    const id = currentDraft ? currentDraft.id : info.instanceID;
    currentDraft = {
      id, key: config.key, formId: form.id, formTitle: form.title, version: form.version,
      hash: form.hash, label: info.instanceName || '', xml: parts.xml, files: parts.files,
    };
    await saveDraft(currentDraft);
    history.replaceState(null, '', `${location.pathname}#draft=${encodeURIComponent(id)}`);
    banner(t('draftSaved'), 'ok', 6000);
  } catch (error) {
    banner(t('storageFailed', { error: error && error.message ? error.message : String(error) }),
           'error');
  }
}

function editInput(draft) {
  const text = new TextDecoder().decode(draft.xml);
  const byName = new Map((draft.files || []).map((f) => [f.name, f]));
  return {
    resolveInstance: async () => text,
    attachmentFileNames: [...byName.keys()],
    // The renderer wants what a fetch answers (it reads `.blob()`), as for a form's media.
    resolveAttachment: async (name) => {
      const file = byName.get(name);
      const type = file.type || 'application/octet-stream';
      return new Response(new Blob([file.data], { type }), { headers: { 'Content-Type': type } });
    },
  };
}

async function main() {
  start();
  watchRendererText(renderer.text);
  document.querySelector('[data-wf-draft]')?.addEventListener('click', onSaveDraft);
  let formXml;
  try {
    const response = await fetch(form.xml);
    if (!response.ok) throw new Error(String(response.status));
    formXml = await response.text();
  } catch (error) {
    banner(t('formLoadFailed'), 'error');
    return;
  }
  const wanted = new URLSearchParams(location.hash.slice(1)).get('draft');
  if (wanted) {
    currentDraft = await getDraft(wanted).catch(() => null);
    if (!currentDraft) banner(t('draftMissing'), 'error');
    else if (currentDraft.hash !== form.hash) banner(t('draftOldVersion'), 'warn');
    else banner(t('draftOpened'), 'ok', 4000);
  }
  const props = { formXml, fetchFormAttachment, onSubmit };
  if (currentDraft) props.editInstance = editInput(currentDraft);
  const app = createApp({ render: () => h(OdkWebForm, props) });
  app.mixin(grabRoot);
  app.mixin(widgets);
  app.use(webFormsPlugin);
  applyPrimeVueLocale(app, primeVueLocale(renderer, dateOrder));
  app.mount(mountPoint);
}

main();
